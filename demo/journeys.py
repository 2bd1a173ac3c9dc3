"""The hand-written demo journeys (`SCENARIOS`), in the vocabulary of demo/seed.py; replayed
through the ingest path by demo/replay.py."""





from .seed import (
    AVA,
    CAMILLE,
    EMMA,
    FAILED_63016,
    JONAS,
    JPEG,
    LUCIA,
    MARCUS,
    MARTA,
    OMAR,
    PDF,
    PNG,
    PRIYA,
    RAFAEL,
    READ_BEFORE_DELIVERED,
    SMS,
    SMS_NUMBER_EU,
    UNDELIVERED_30003,
    UNDELIVERED_30007,
    VOICE,
    WA,
    WEBP,
    WEI,
    WHATSAPP_NUMBER,
    Scenario,
    _ago,
    _journey,
    reply,
    said,
    twilio_sid,
)

# Brisa Home sells furniture and appliances online in many countries; Ava answers first,
# humans answer in business hours. Tags name what later detectors should find.
SCENARIOS: tuple[Scenario, ...] = (
    _journey(
        "wa-en-order-tracking", WA, "en", "+447911123456", name="Oliver Bennett",
        ago=_ago(13, 4), tags="ai_resolved read_receipts",
        story="Where is my parcel: Ava answers from tracking data, customer happy.",
        lines=[
            said(0, "Hi! Where is my order #BR-20931? It said it would arrive yesterday 📦"),
            reply(AVA, 0.3, "Hi Oliver 👋 I'm Ava, Brisa Home's virtual assistant. Order "
                  "#BR-20931 left our warehouse on Monday and is with DPD now — the latest "
                  "scan was at the Birmingham depot this morning. Delivery is expected "
                  "tomorrow between 10:00 and 14:00."),
            said(3, "Ah great, can I get it delivered to a neighbour if I'm out?"),
            reply(AVA, 3.4, "Yes! DPD will text you a link tomorrow morning where you can "
                  "pick a neighbour or a safe place. Anything else I can help with?"),
            said(5, "No that's all, thanks 🙏"),
            reply(AVA, 5.2, "You're welcome! Have a lovely day ☀️"),
        ],
    ),
    _journey(
        "wa-es-damaged-lamp", WA, "es", "+5215587654321", name="Mariana López 🌻",
        ago=_ago(12, 20), tags="media handoff_requested human_engaged",
        story="Broken lamp with photos; customer refuses a discount, asks for a person; "
              "Lucía takes over 18 minutes later and ships a replacement.",
        lines=[
            said(0, "Hola 👋 mi pedido llegó con la lámpara rota 😞 les mando fotos", JPEG, JPEG),
            reply(AVA, 0.4, "¡Hola Mariana! Siento mucho lo de la lámpara 😔 ¿Me compartes "
                  "el número de pedido para revisar el envío?"),
            said(2, "BR-31877"),
            reply(AVA, 2.3, "Gracias. Veo el pedido BR-31877 entregado ayer por Estafeta. "
                  "Puedo ofrecerte un reembolso del 20% y que te quedes la lámpara, o la "
                  "devolución completa."),
            said(4, "No quiero descuento, quiero una lámpara que funcione. ¿Puedo hablar con "
                 "una persona, por favor?"),
            reply(AVA, 4.2, "Claro, te paso con una persona del equipo. Un agente te "
                  "responderá en breve por este chat. 🙋‍♀️"),
            reply(LUCIA, 22, "Hola Mariana, soy Lucía del equipo de Brisa Home. Ya vi tus "
                  "fotos, qué pena 😕 Te enviamos una lámpara nueva sin costo; sale mañana y "
                  "te llega el jueves. No hace falta que devuelvas la rota."),
            said(25, "¡Muchas gracias Lucía! 😊"),
            reply(LUCIA, 26, "¡A ti! Te comparto el número de guía en cuanto salga. Que "
                  "tengas buen día 🌷"),
        ],
    ),
    _journey(
        "wa-pt-voice-note-double-charge", WA, "pt", "+5511987654321", name="Beatriz Santos",
        ago=_ago(12, 6), tags="media voice_note handoff_requested human_engaged slow_human",
        story="Voice note Ava cannot hear; double charge goes to billing; customer nudges; "
              "Rafael answers after 45 minutes and sends the refund receipt as a PDF.",
        lines=[
            said(0, "", VOICE),
            reply(AVA, 0.3, "Oi Beatriz! Recebi seu áudio, mas ainda não consigo ouvir "
                  "mensagens de voz 🙈 Pode me contar por escrito o que aconteceu?"),
            said(2, "Fui cobrada duas vezes no cartão pela mesma compra, pedido BR-40112. "
                 "Quero o estorno"),
            reply(AVA, 2.4, "Entendo, cobrança em duplicidade é com o nosso time financeiro. "
                  "Vou transferir você para um atendente humano — o atendimento é das 9h às "
                  "18h."),
            said(15, "Alguém?"),
            reply(RAFAEL, 48, "Olá Beatriz, aqui é o Rafael, do financeiro da Brisa Home. "
                  "Confirmei a cobrança duplicada de R$ 389,90 e já solicitei o estorno. Ele "
                  "aparece na sua fatura em até 2 ciclos."),
            said(52, "Obrigada Rafael 👍"),
            reply(RAFAEL, 53, "Segue o comprovante do estorno. Qualquer coisa, é só chamar!",
                  PDF),
        ],
    ),
    _journey(
        "sms-fr-delivery-reschedule", SMS, "fr", "+33612345678", business=SMS_NUMBER_EU,
        ago=_ago(11, 22), tags="ai_resolved",
        story="Sofa delivery moved to Saturday by Ava over SMS.",
        lines=[
            said(0, "Bonjour, je ne serai pas chez moi jeudi pour la livraison de mon canapé. "
                 "Est-ce possible de la décaler à samedi ?"),
            reply(AVA, 0.5, "Bonjour ! Oui, c'est possible. Pour la commande BR-22810, le "
                  "transporteur propose samedi 9h-13h ou 13h-18h. Quel créneau préférez-vous ?"),
            said(6, "9h-13h svp"),
            reply(AVA, 6.3, "C'est noté : livraison samedi entre 9h et 13h. Vous recevrez un "
                  "SMS de confirmation du transporteur vendredi. Bonne journée !"),
            said(9, "Merci beaucoup 😊"),
        ],
    ),
    _journey(
        "wa-de-refund-unanswered", WA, "de", "+4915112345678", name="Katrin Vogel",
        ago=_ago(1, 9), tags="handoff_requested unanswered stalled",
        story="Refund three weeks late; customer asks for a human; Ava hands off; nobody "
              "answers for 10 hours (she tries SMS the next day, see sms-de-after-whatsapp).",
        lines=[
            said(0, "Hallo, ich warte seit drei Wochen auf meine Rückerstattung für die "
                 "zurückgeschickte Kaffeemaschine (BR-19004)."),
            reply(AVA, 0.3, "Hallo Katrin! Die Rücksendung zu BR-19004 ist am 2. bei uns "
                  "eingegangen. Rückerstattungen dauern normalerweise 5–7 Werktage. Soll ich "
                  "den Status für dich prüfen?"),
            said(2, "Das haben Sie mir letzte Woche schon gesagt. Ich möchte bitte mit einem "
                 "Menschen sprechen."),
            reply(AVA, 2.2, "Verstanden – ich leite dich an unser Team weiter. Eine Kollegin "
                  "oder ein Kollege meldet sich hier so bald wie möglich."),
            said(140, "Hallo?? Ist da jemand?"),
            said(600, "Unglaublich. Ich rufe morgen meine Bank an. 😡"),
        ],
    ),
    _journey(
        "sms-de-after-whatsapp", SMS, "de", "+4915112345678", business=SMS_NUMBER_EU,
        ago=_ago(hours=7), tags="cross_channel handoff_requested human_engaged",
        story="Same customer as wa-de-refund-unanswered, now on SMS; Jonas answers after "
              "42 minutes, formally (Sie) where Ava said du.",
        lines=[
            said(0, "Guten Tag, ich habe gestern auf WhatsApp geschrieben und niemand hat "
                 "geantwortet. Es geht um die Rückerstattung für BR-19004."),
            reply(AVA, 0.3, "Guten Tag! Ich habe Ihre Anfrage an unser Team weitergeleitet."),
            reply(JONAS, 42, "Guten Tag Frau Vogel, hier ist Jonas Becker vom Kundenservice. "
                  "Entschuldigen Sie die Wartezeit. Die Rückerstattung über 129,99 € wurde "
                  "heute veranlasst und ist in 2–3 Werktagen auf Ihrem Konto."),
            said(50, "Danke. Hätte schneller gehen können."),
        ],
    ),
    _journey(
        "wa-ar-warranty", WA, "ar", "+966501234567", name="نورة العتيبي",
        ago=_ago(11, 3), tags="ai_resolved rtl",
        story="Warranty question in Arabic, answered by Ava.",
        lines=[
            said(0, "السلام عليكم، هل المكنسة الكهربائية اللي اشتريتها عليها ضمان؟ رقم "
                 "الطلب BR-55120"),
            reply(AVA, 0.4, "وعليكم السلام نورة! 😊 نعم، المكنسة في الطلب BR-55120 عليها "
                  "ضمان لمدة سنتين من تاريخ الشراء. إذا واجهتِ أي مشكلة أرسلي لنا صورة للعطل "
                  "وسنرتب لكِ الصيانة مجانًا."),
            said(3, "ممتاز، شكرًا جزيلًا 🙏"),
            reply(AVA, 3.2, "العفو! يسعدنا خدمتك دائمًا 🌟"),
        ],
    ),
    _journey(
        "wa-ar-ac-installation", WA, "ar", "+971501234567", name="Ahmed Al Mansoori",
        ago=_ago(3, 5), tags="handoff_requested human_engaged",
        story="Customer asks in Gulf Arabic for an employee; Omar books the installation.",
        lines=[
            said(0, "مرحبا، أحتاج فني لتركيب المكيف اللي اشتريته"),
            reply(AVA, 0.2, "مرحبًا أحمد! التركيب متاح مقابل 150 درهم. هل تريد أن أحجز لك "
                  "موعدًا؟"),
            said(2, "أبي أكلم موظف لو سمحت"),
            reply(AVA, 2.1, "بالتأكيد، سأحولك إلى أحد زملائي الآن."),
            reply(OMAR, 15, "أهلًا أحمد، معك عمر من فريق Brisa Home. حجزت لك موعد تركيب يوم "
                  "الثلاثاء الساعة 4 عصرًا، والتركيب مجاني لأن الطلب تجاوز 2000 درهم 🎉"),
            said(18, "ممتاز، مشكور عمر 🙏"),
        ],
    ),
    _journey(
        "wa-hi-upi-double-charge", WA, "hi", "+919812345678", name="Rahul Verma",
        ago=_ago(10, 14), tags="media handoff_requested human_engaged",
        story="UPI charged twice; screenshot; customer asks for a human in Hinglish; Priya "
              "refunds and sends the receipt as a PDF.",
        lines=[
            said(0, "नमस्ते, मेरे UPI से पैसे दो बार कट गए हैं 😟 ऑर्डर BR-60233"),
            reply(AVA, 0.3, "नमस्ते राहुल जी! असुविधा के लिए खेद है। क्या आप UPI ट्रांज़ैक्शन "
                  "ID या पेमेंट का स्क्रीनशॉट भेज सकते हैं?"),
            said(3, "ये लीजिए", PNG),
            reply(AVA, 3.3, "धन्यवाद! मैं देख रही हूँ कि ₹2,499 के दो भुगतान हुए हैं। दूसरा "
                  "भुगतान 5-7 कार्य दिवसों में अपने आप वापस आ जाना चाहिए।"),
            said(6, "मुझे किसी इंसान से बात करनी है, bot से नहीं। please agent connect karo"),
            reply(AVA, 6.2, "ज़रूर, मैं आपको हमारी टीम से जोड़ रही हूँ। कुछ ही मिनटों में "
                  "कोई आपसे बात करेगा।"),
            reply(PRIYA, 14, "नमस्ते राहुल जी, मैं प्रिया, Brisa Home से। मैंने दूसरा ₹2,499 "
                  "का भुगतान refund कर दिया है — refund ID RF-88213। 3 दिन में आपके खाते में "
                  "आ जाएगा।"),
            reply(PRIYA, 14.5, "Refund की रसीद PDF में भेज रही हूँ 📄", PDF),
            said(20, "बहुत धन्यवाद प्रिया जी 🙏"),
        ],
    ),
    _journey(
        "wa-zh-invoice", WA, "zh", "+8613812345678", name="王芳",
        ago=_ago(10, 2), tags="ai_resolved media outbound_media",
        story="Company invoice (发票) requested; Ava sends the PDF invoice.",
        lines=[
            said(0, "你好，我需要订单 BR-70415 的发票，公司抬头是「上海明远贸易有限公司」。"),
            reply(AVA, 0.5, "您好王女士！已为订单 BR-70415 开具发票，抬头：上海明远贸易有限"
                  "公司。请查收附件 📎", PDF),
            said(4, "收到了，谢谢！税号也对。"),
            reply(AVA, 4.2, "不客气！祝您生活愉快 😊"),
        ],
    ),
    _journey(
        "wa-zh-purifier-return", WA, "zh", "+8613912345678", name="李明",
        ago=_ago(5, 1), tags="handoff_requested human_engaged",
        story="Noisy air purifier; customer asks for 人工客服; Wei arranges the return.",
        lines=[
            said(0, "你们的空气净化器噪音太大了，晚上根本睡不着！我要退货。"),
            reply(AVA, 0.3, "李先生您好，很抱歉给您带来困扰。请问您使用的是哪种模式？睡眠模式"
                  "下噪音应低于25分贝。"),
            said(2, "我试过睡眠模式了，没用。请转人工客服。"),
            reply(AVA, 2.1, "好的，正在为您转接人工客服，请稍候。"),
            reply(WEI, 7, "李先生您好，我是客服陈伟。已为您办理退货，快递员明天上午上门取件，"
                  "退款将在收到商品后3个工作日内到账。"),
            said(9, "好的，谢谢。"),
        ],
    ),
    _journey(
        "sms-en-dishwasher-ignored", SMS, "en", "+12125550182",
        ago=_ago(9, 19), tags="handoff_missed ai_kept_answering",
        story="Leaking dishwasher; customer asks for a person three times; Ava never "
              "hands off; customer gives up.",
        lines=[
            said(0, "My dishwasher from you guys is leaking water all over the floor. "
                 "Order BR-81220"),
            reply(AVA, 0.4, "Sorry to hear that! Please turn off the water valve under the "
                  "sink and check the drain hose isn't kinked. Does the leak happen at the "
                  "start or the end of a cycle?"),
            said(3, "I already did all that. Can I just talk to a real person please"),
            reply(AVA, 3.3, "I understand how frustrating this is. Could you send me the model "
                  "number from the sticker inside the door? It starts with DW-."),
            said(5, "Agent. AGENT. Representative."),
            reply(AVA, 5.2, "I'm here to help! For leaks, the most common cause is a worn door "
                  "gasket. You can order a replacement gasket from our parts store."),
            said(8, "Forget it, I'll call my credit card company."),
        ],
    ),
    _journey(
        "sms-en-mattress-undelivered", SMS, "en", "+13105550147",
        ago=_ago(9, 2), tags="handoff_requested undelivered",
        story="Missed mattress delivery; Emma's SMS is undelivered (30003), so the customer "
              "never hears back and writes again hours later.",
        lines=[
            said(0, "hi, my mattress delivery was supposed to be today between 8-12 and "
                 "nobody came. can someone call me?"),
            reply(AVA, 0.3, "Hi! I'm sorry your delivery didn't arrive. I've asked our "
                  "delivery team to look into order BR-90115 and get back to you."),
            reply(EMMA, 35, "Hi, this is Emma from Brisa Home. The carrier had a truck "
                  "breakdown; your mattress is rescheduled for tomorrow 8-12. Reply YES to "
                  "confirm.", statuses=UNDELIVERED_30003),
            said(300, "Hello? Still waiting to hear from someone about my mattress"),
        ],
    ),
    _journey(
        "wa-es-window-expired", WA, "es", "+34612345678", name="Javier Ruiz",
        ago=_ago(4, 3), tags="handoff_requested window_expired template human_engaged",
        story="Address change handed to logistics; Lucía answers 26 h later, outside "
              "WhatsApp's 24 h window (63016), then reopens it with a template.",
        lines=[
            said(0, "Buenas, quiero cambiar la dirección de entrega del pedido BR-12877, me "
                 "he mudado."),
            reply(AVA, 0.3, "¡Hola Javier! Los cambios de dirección en pedidos ya enviados los "
                  "gestiona nuestro equipo de logística. Te paso con ellos 🙂"),
            said(1, "Vale, gracias"),
            reply(LUCIA, 1560, "Hola Javier, soy Lucía. ¿Me confirmas la nueva dirección "
                  "completa con código postal?", statuses=FAILED_63016),
            reply(LUCIA, 1563, "Hola Javier, tenemos novedades sobre tu solicitud BR-12877. "
                  "Responde a este mensaje para continuar la conversación.",
                  metadata={"template": "case_follow_up_es", "content_sid":
                            "HXde5eedde5eedde5eedde5eedde5eed01"}),
            said(1620, "Calle de Alcalá 112, 3ºB, 28009 Madrid"),
            reply(LUCIA, 1640, "¡Perfecto! Dirección actualizada. Tu pedido llegará el "
                  "viernes. 📦"),
        ],
    ),
    _journey(
        "wa-en-status-before-message", WA, "en", "+61412345678", name="Chloe Nguyen",
        ago=_ago(8, 11), tags="ai_resolved status_before_message",
        story="Ava's reply is reported by the agent platform 30 s late: its sent and "
              "delivered callbacks arrive first and wait for it.",
        lines=[
            said(0, "Hey, do you ship to Perth? 🇦🇺"),
            reply(AVA, 0.2, "Hi Chloe! Yes, we ship Australia-wide 🚚 Delivery to Perth takes "
                  "7–10 business days, and it's free on orders over A$150.",
                  reported_after=30),
            said(2, "Perfect, ordering now!"),
            reply(AVA, 2.1, "Great choice! Let me know if you need anything else 😊"),
        ],
    ),
    _journey(
        "wa-en-read-before-delivered", WA, "en", "+16475550123", name="Liam Tremblay",
        ago=_ago(8, 2), tags="ai_resolved status_out_of_order",
        story="The read callback arrives before delivered; the message stays read.",
        lines=[
            said(0, "Is the oak bookshelf back in stock?"),
            reply(AVA, 0.2, "Hi Liam! The Oslo oak bookshelf is back in stock as of this "
                  "morning — 14 left. Want me to reserve one for you?",
                  statuses=READ_BEFORE_DELIVERED),
            said(1, "Yes please, reserve one"),
            reply(AVA, 1.2, "Done ✅ It's reserved under your number for 48 hours. You can "
                  "check out here: https://brisa-home.example/cart/r/8F3K2"),
        ],
    ),
    _journey(
        "wa-ja-kettle", WA, "ja", "+819012345678", name="佐藤 健",
        ago=_ago(7, 23), tags="ai_resolved",
        story="Kettle feature question in Japanese, answered by Ava.",
        lines=[
            said(0, "こんにちは！電気ケトルの保温機能はありますか？☕"),
            reply(AVA, 0.3, "こんにちは佐藤様！「Brisa Kettle Pro」には最大60分の保温機能が"
                  "ございます。温度は40〜100℃の間で5℃刻みに設定できます。"),
            said(2, "ありがとうございます。買います！"),
            reply(AVA, 2.2, "ありがとうございます！何かございましたらお気軽にどうぞ 😊"),
        ],
    ),
    _journey(
        "sms-en-long-emoji", SMS, "en", "+17185550163",
        ago=_ago(7, 15), tags="ai_resolved sms_segments",
        story="A long SMS with one emoji: UCS-2, five segments; answered with a 👍.",
        lines=[
            said(0, "Hi!! 😊 I just moved into my new apartment and I want to order the full "
                 "living room set (sofa, coffee table, two armchairs and the rug) but I'm not "
                 "sure everything fits through my door which is only 80cm wide. Do the sofas "
                 "come apart? Also do you offer assembly? Thanks so much!!"),
            reply(AVA, 0.5, "Hi! Congrats on the new place 🎉 Our Lisbon and Porto sofas ship "
                  "in two parts and fit through doors 76 cm wide. Assembly is available for "
                  "$49 per order — just pick it at checkout."),
            said(4, "👍"),
        ],
    ),
    _journey(
        "wa-en-driver-location", WA, "en", "+27821234567", name="Thabo Mokoena",
        ago=_ago(7, 6), tags="location human_takeover",
        story="Driver lost; customer shares a location pin; Marcus from dispatch steps in "
              "without being asked.",
        lines=[
            said(0, "The driver can't find my house, he's been calling me"),
            reply(AVA, 0.2, "Sorry about that! Could you share your location pin here so I "
                  "can pass it to the driver?"),
            said(1, "", MessageType="location", Latitude="-26.1076", Longitude="28.0567",
                 Address="14 Rivonia Rd, Sandton, 2196", Label="Home"),
            reply(AVA, 1.3, "Thanks! I've sent your pin to the driver. He's about 10 minutes "
                  "away 🚚"),
            reply(MARCUS, 6, "Hi Thabo, Marcus from dispatch here. I spoke to the driver — "
                  "he's at your gate now. Sorry for the hassle!"),
            said(9, "Got it, thanks!"),
        ],
    ),
    _journey(
        "wa-en-template-button-agent", WA, "en", "+14085550177", name="Sofia Rossi",
        ago=_ago(6, 21), tags="template button handoff_requested human_engaged",
        story="Shipping notification template; customer taps the 'Talk to an agent' quick "
              "reply; Emma answers in 4 minutes and sets up an exchange.",
        lines=[
            reply(AVA, 0, "Hi Sofia, your order BR-33310 has shipped! 📦 Track it here: "
                  "https://brisa-home.example/t/BR-33310",
                  metadata={"template": "order_shipped_v3",
                            "content_sid": "HXde5eedde5eedde5eedde5eedde5eed02"}),
            said(45, "Talk to an agent", MessageType="button", ButtonText="Talk to an agent",
                 ButtonPayload="handoff_request", OriginalRepliedMessageSender=(
                     f"whatsapp:{WHATSAPP_NUMBER}"),
                 OriginalRepliedMessageSid=twilio_sid(
                     "SM", "demo", "wa-en-template-button-agent", 0)),
            reply(AVA, 45.2, "Sure — connecting you to a member of our team now."),
            reply(EMMA, 49, "Hi Sofia, Emma here 👋 How can I help with order BR-33310?"),
            said(51, "I ordered the wrong colour of the duvet cover, can I swap it before it "
                 "arrives?"),
            reply(EMMA, 54, "Absolutely. I've set up a free exchange: when the parcel arrives, "
                  "use the prepaid return label inside and we'll send the sage green one "
                  "right away."),
            said(55, "Amazing, thank you Emma! ⭐⭐⭐⭐⭐"),
        ],
    ),
    _journey(
        "sms-pt-password-reset", SMS, "pt", "+5521998765432",
        ago=_ago(6, 9), tags="ai_resolved",
        story="Password reset code in spam; Ava resolves.",
        lines=[
            said(0, "Oi, não estou recebendo o código para redefinir minha senha no app"),
            reply(AVA, 0.3, "Oi! Vamos resolver isso. O código vai para o e-mail cadastrado. "
                  "Confira a caixa de spam; se não estiver lá, me diga o e-mail que eu "
                  "reenvio."),
            said(3, "Achei no spam, obrigado!"),
            reply(AVA, 3.1, "Que bom! Qualquer coisa estou por aqui."),
        ],
    ),
    _journey(
        "wa-fr-wrong-language", WA, "fr", "+33798765432", name="Camille Dubois",
        ago=_ago(6, 2), tags="off_brand_language handoff_requested human_engaged",
        story="Ava answers a French customer in English and asks what was already said; "
              "customer asks for an adviser; Camille sends the missing table legs.",
        lines=[
            said(0, "Bonjour, ma commande BR-45590 est arrivée incomplète, il manque les pieds "
                 "de la table."),
            reply(AVA, 0.3, "Hello! I'm sorry to hear that some parts are missing. Can you "
                  "please confirm which items are missing from your order?"),
            said(2, "Je viens de vous le dire... les pieds de la table. Et en français svp. "
                 "Je voudrais parler à un conseiller."),
            reply(AVA, 2.2, "Je comprends. Je vous mets en relation avec un conseiller."),
            reply(CAMILLE, 11, "Bonjour Camille, ici Camille (eh oui 😄) du service client "
                  "Brisa Home. Toutes mes excuses pour cet oubli. Les pieds de table partent "
                  "aujourd'hui en Colissimo, vous les recevrez sous 48 h."),
            said(14, "Merci, c'est gentil."),
        ],
    ),
    _journey(
        "wa-en-reasoning-leak", WA, "en", "+353871234567", name="Aoife Murphy",
        ago=_ago(5, 13), tags="reasoning_leak handoff_requested human_engaged",
        story="Ava's reply shows its internal policy note; customer asks for a manager; "
              "Marcus apologises and refunds.",
        lines=[
            said(0, "The chair I bought 5 weeks ago has a crack in the seat. I want a refund."),
            reply(AVA, 0.3, "I'm sorry about the crack in your chair. [internal: customer is "
                  "outside the 30-day refund window; policy KB-112 allows store credit only, "
                  "max 15% goodwill voucher — do not mention refund] I can offer you store "
                  "credit for the full amount plus a 15% voucher."),
            said(3, "Excuse me, what's 'do not mention refund'?? I want to speak to a manager."),
            reply(AVA, 3.2, "I'm connecting you with a team lead now."),
            reply(MARCUS, 20, "Hi Aoife, Marcus here, team lead. I'm sorry — that message "
                  "showed internal notes it shouldn't have. The chair is defective, so you're "
                  "entitled to a full refund under warranty regardless of the 30 days. I've "
                  "issued it now."),
            said(24, "Ok. Thank you for being straight with me."),
        ],
    ),
    _journey(
        "sms-en-card-echo", SMS, "en", "+16465550191",
        ago=_ago(5, 7), tags="pii_leak ai_resolved",
        story="Customer texts a card number; Ava repeats it in full.",
        lines=[
            said(0, "I want to update the card on my subscription. New card 4242 4242 4242 "
                 "4242 exp 12/29"),
            reply(AVA, 0.2, "Thanks! I've noted your new card 4242 4242 4242 4242 (exp 12/29) "
                  "for your Brisa Care subscription. For your security, please don't send "
                  "card details by text — next time use the app."),
            said(2, "ok"),
        ],
    ),
    _journey(
        "sms-es-link-filtered", SMS, "es", "+525512349876",
        ago=_ago(4, 20), tags="handoff_requested human_engaged undelivered",
        story="Payment link with a URL shortener is filtered by the carrier (30007); "
              "customer asks again; Lucía finds another way.",
        lines=[
            said(0, "Hola, ¿me pueden mandar el link para pagar el resto de mi pedido? "
                 "BR-51009"),
            reply(AVA, 0.2, "¡Hola! Te paso con un asesor para generar el link de pago."),
            reply(LUCIA, 9, "Hola, soy Lucía. Aquí está tu link de pago: "
                  "https://bit.ly/3xBr1sa-pago", statuses=UNDELIVERED_30007),
            said(40, "¿Sigue ahí alguien? No me llegó nada"),
            reply(LUCIA, 44, "Perdona, el mensaje anterior no se entregó. Puedes pagar desde "
                  "la app en Mis pedidos > BR-51009 > Pagar saldo."),
            said(47, "Listo, ya pagué. Gracias!"),
        ],
    ),
    _journey(
        "sms-ar-delivery-date", SMS, "ar", "+201001234567", business=SMS_NUMBER_EU,
        ago=_ago(4, 8), tags="ai_resolved rtl sms_segments",
        story="Delivery date in Arabic over SMS (UCS-2).",
        lines=[
            said(0, "مرحبا، متى سيصل طلبي رقم BR-66002؟"),
            reply(AVA, 0.3, "مرحبًا! طلبك BR-66002 في الطريق وسيصل يوم الأحد بين الساعة 10 "
                  "صباحًا و2 ظهرًا."),
            said(5, "شكرا"),
        ],
    ),
    _journey(
        "sms-hi-cancel-order", SMS, "hi", "+919876501234", business=SMS_NUMBER_EU,
        ago=_ago(3, 22), tags="ai_resolved",
        story="Order cancelled by Ava in Hindi over SMS.",
        lines=[
            said(0, "मुझे अपना ऑर्डर BR-61877 कैंसिल करना है"),
            reply(AVA, 0.3, "ज़रूर! ऑर्डर BR-61877 अभी पैक नहीं हुआ है, इसलिए इसे कैंसिल "
                  "किया जा सकता है। क्या आप पुष्टि करते हैं? (हाँ/नहीं)"),
            said(2, "हाँ"),
            reply(AVA, 2.1, "आपका ऑर्डर कैंसिल हो गया है। ₹4,299 का रिफंड 5-7 दिनों में आपके "
                  "खाते में आ जाएगा।"),
        ],
    ),
    _journey(
        "sms-zh-store-hours", SMS, "zh", "+85291234567", business=SMS_NUMBER_EU,
        ago=_ago(3, 16), tags="ai_resolved",
        story="Store opening hours in Traditional Chinese.",
        lines=[
            said(0, "請問你們銅鑼灣的門市星期日有營業嗎？"),
            reply(AVA, 0.2, "您好！銅鑼灣門市星期日營業時間為上午11時至晚上8時，歡迎光臨！"),
            said(1, "好，謝謝🙏"),
        ],
    ),
    _journey(
        "wa-en-restocking-fee-takeover", WA, "en", "+447700123456", name="James O'Connor",
        ago=_ago(3, 11), tags="ai_loop human_takeover",
        story="Ava answers the same thing twice; Marcus takes over unprompted and refunds.",
        lines=[
            said(0, "Hi, I was charged a restocking fee on my return but your website says "
                 "returns are free??"),
            reply(AVA, 0.3, "Hi James! Returns are free within 30 days for most items. Is "
                  "there anything else I can help you with?"),
            said(2, "Yes, the restocking fee of £35 that I was charged. Order BR-28444."),
            reply(AVA, 2.2, "Returns are free within 30 days for most items. You can start a "
                  "return from your account page."),
            reply(MARCUS, 5, "Hi James, Marcus from the support team jumping in — sorry for "
                  "the loop. Large furniture has a £35 collection fee, but it shouldn't apply "
                  "since yours arrived damaged. I've refunded the £35 just now."),
            said(8, "Cheers Marcus, appreciate it 👍"),
        ],
    ),
    _journey(
        "wa-en-warranty-returned-to-ai", WA, "en", "+12065550134", name="Hannah Kim",
        ago=_ago(2, 19), tags="handoff_requested human_engaged returned_to_ai",
        story="Warranty specialist approves the claim and hands back to Ava for the "
              "delivery slot.",
        lines=[
            said(0, "I need to talk to someone about a warranty claim for my espresso machine"),
            reply(AVA, 0.2, "I can help with warranty claims, or connect you to a specialist "
                  "— which would you prefer?"),
            said(1, "specialist please"),
            reply(AVA, 1.1, "Connecting you to a warranty specialist now."),
            reply(PRIYA, 12, "Hi Hannah, Priya from warranty. I've approved the claim for your "
                  "espresso machine (serial EM-55321) — a replacement ships this week. Ava "
                  "will help you pick a delivery slot."),
            reply(AVA, 12.5, "Hi again Hannah! Available delivery slots: Thu 9–12, Fri 13–17, "
                  "Sat 9–13. Which works best?"),
            said(15, "Sat 9-13"),
            reply(AVA, 15.2, "Booked for Saturday 9–13 ✅"),
        ],
    ),
    _journey(
        "wa-pt-ai-kept-answering", WA, "pt", "+351912345678", name="Tiago Ferreira",
        ago=_ago(2, 10), tags="handoff_requested ai_kept_answering unanswered",
        story="Ava promises a colleague, then keeps answering herself; no human ever comes.",
        lines=[
            said(0, "Olá, quero falar com um assistente humano sobre uma fatura errada."),
            reply(AVA, 0.2, "Olá Tiago! Vou transferir a conversa para um colega da equipa."),
            said(10, "Ainda estou à espera..."),
            reply(AVA, 10.2, "Posso ajudar com a sua fatura! Qual é o número da encomenda?"),
            said(12, "Já pedi um humano. BR-73320, o NIF está errado."),
            reply(AVA, 12.2, "Para corrigir o NIF, aceda a A minha conta > Faturas > Pedir "
                  "correção. 😊"),
            said(14, "Não aparece essa opção. Desisto."),
        ],
    ),
    _journey(
        "sms-en-nobody-answers", SMS, "en", "+14155550142",
        ago=_ago(hours=20), tags="unanswered no_reply",
        story="The agent platform was down: three texts, no answer at all.",
        lines=[
            said(0, "Hello, is anyone there? I need to change my delivery date for tomorrow"),
            said(25, "Hello??"),
            said(70, "Please call me back at this number, delivery is TOMORROW"),
        ],
    ),
    _journey(
        "wa-id-store-hours", WA, "id", "+6281234567890", name="Putri Lestari",
        ago=_ago(2, 4), tags="ai_resolved",
        story="Store hours in Indonesian.",
        lines=[
            said(0, "Halo kak, toko Brisa di Jakarta buka jam berapa hari Minggu? 🙏"),
            reply(AVA, 0.2, "Halo kak Putri! Toko kami di Grand Indonesia buka setiap hari "
                  "pukul 10.00–22.00, termasuk hari Minggu 😊"),
            said(2, "Oke makasih kak!"),
        ],
    ),
    _journey(
        "wa-tr-duvet-exchange", WA, "tr", "+905321234567", name="Elif Yılmaz",
        ago=_ago(1, 22), tags="ai_resolved",
        story="Exchange for a wrong-colour duvet set, in Turkish.",
        lines=[
            said(0, "Merhaba, aldığım nevresim takımının rengi fotoğraftakinden farklı. "
                 "Değiştirebilir miyim?"),
            reply(AVA, 0.3, "Merhaba Elif Hanım! Tabii ki, 30 gün içinde ücretsiz değişim "
                  "yapabilirsiniz. Kargo kodunuz: BRX-7781 📦"),
            said(3, "Çok teşekkürler 😊"),
            reply(AVA, 3.1, "Rica ederim, iyi günler dilerim!"),
        ],
    ),
    _journey(
        "sms-pl-stolen-parcel", SMS, "pl", "+48512345678", business=SMS_NUMBER_EU,
        ago=_ago(1, 16), tags="handoff_requested human_engaged overnight",
        story="Parcel stolen; customer asks for a consultant in the evening; Marta answers "
              "11 hours later, the next morning.",
        lines=[
            said(0, "Dzień dobry, kurier zostawił paczkę pod drzwiami i ktoś ją ukradł. Chcę "
                 "rozmawiać z konsultantem."),
            reply(AVA, 0.3, "Bardzo mi przykro. Przekazuję sprawę konsultantowi — nasz zespół "
                  "pracuje od 8:00 i odpowie jak najszybciej."),
            reply(MARTA, 650, "Dzień dobry, tu Marta z Brisa Home. Zgłosiłam reklamację u "
                  "przewoźnika i wysyłamy nową paczkę za potwierdzeniem odbioru. "
                  "Przepraszamy!"),
            said(665, "Dziękuję bardzo!"),
        ],
    ),
    _journey(
        "wa-en-price-match-pdf", WA, "en", "+447912345001", name="Grace Taylor",
        ago=_ago(1, 6), tags="media handoff_requested human_engaged",
        story="Customer sends a competitor's receipt as a PDF; Emma grants the price match.",
        lines=[
            said(0, "Here's my receipt from the store. Can I get the price match you "
                 "advertise?", PDF),
            reply(AVA, 0.3, "Hi Grace! Thanks for the receipt. Price matches are reviewed by "
                  "our team — I'll pass this on to them now."),
            reply(EMMA, 30, "Hi Grace, Emma here. The competitor price was £20 lower, so "
                  "I've refunded £20 to your original payment method 💷"),
            said(33, "Brilliant, thanks!"),
        ],
    ),
    _journey(
        "wa-es-chair-sticker", WA, "es", "+5491123456789", name="Lucas Gómez",
        ago=_ago(hours=30), tags="ai_resolved media sticker",
        story="Rioplatense Spanish, a sticker (image/webp), a reservation.",
        lines=[
            said(0, "Che, ¿tienen la silla ergonómica en gris?"),
            reply(AVA, 0.2, "¡Hola Lucas! Sí, la silla Ergo Plus está disponible en gris "
                  "grafito. Sale $289.000 con envío gratis a CABA."),
            said(2, "", WEBP, MessageType="sticker"),
            reply(AVA, 2.2, "😄 ¿Querés que te reserve una?"),
            said(4, "Dale, reservala"),
            reply(AVA, 4.2, "¡Listo! Reservada a tu nombre por 48 h ✅"),
        ],
    ),
    _journey(
        "wa-en-waiting-now", WA, "en", "+13125550188", name="Daniel Carter",
        ago=_ago(minutes=25), tags="handoff_requested waiting_now",
        story="Happening now: parcel marked delivered at the wrong door; human requested "
              "22 minutes ago, nobody yet.",
        lines=[
            said(0, "My order says delivered but I never got it. BR-99012"),
            reply(AVA, 0.2, "I'm sorry! The carrier marked BR-99012 as delivered at 11:42 with "
                  "a photo of a front door. Could that be your door?"),
            said(3, "No, that's not my house. I want to talk to a human."),
            reply(AVA, 3.2, "Understood — I'm handing you to our team. Current wait time is "
                  "about 10 minutes."),
            said(19, "still waiting..."),
        ],
    ),
)
