"""Class sessions: when an environment is open to students, and what happens at its end."""
