"""Personal accounts of officials and company staff (issue 20): people, invitations and
password resets, sign-in with a second factor, server-side sessions, and their audit.

Stored in the credential directory's database (shared/directory.py migrates it), so every
service can check a session locally, as it checks a credential. docs/accounts.md says what
exists and what the console and the companies' portal wire to it next.
"""
