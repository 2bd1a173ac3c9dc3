"""`field__any=ids`: membership in a long list of ids as one parameter.

`__in` writes one placeholder per value: for the thousands of ids a batch of the applier or
the sweep looks up, building, splitting and planning that text cost more than running the
query. `__any` binds the whole list once — PostgreSQL `= ANY(%s)` with an array, SQLite
`IN (SELECT value FROM json_each(%s))` with a JSON array — and matches the same rows.
Registered on integer and character fields and on relations in ConversationsConfig.ready().
"""

import json

from django.db.models import CharField, ForeignObject, IntegerField, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self):  # noqa: ANN201 - Django's signature
        field = self.lhs.output_field
        target = field.target_field if isinstance(field, ForeignObject) else field
        return [target.get_prep_value(v) for v in self.rhs]

    def as_sql(self, compiler, connection):  # noqa: ANN001, ANN201
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, list(self.rhs)]
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*lhs_params,
                                                                 json.dumps(list(self.rhs))]


def lookups_register() -> None:
    # Ids and keys only: on a JSONField `__any` stays the key "any".
    for field in (IntegerField, CharField, ForeignObject):
        field.register_lookup(AnyOf)
