"""Demo data for the host project (config/): `seed_demo`, `ensure_demo_user`, the bulk
loader the benchmarks use, and the handoff scenario library. Not part of the distribution:
a host project never installs it, and no plugin app imports it."""
