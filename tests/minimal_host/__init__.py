"""A minimal Django project that installs Handoff Auditor the way the README says."""
