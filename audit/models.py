# The audit app reads the other apps' models; it has none of its own yet.
