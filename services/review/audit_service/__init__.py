"""Review's audit trail at work: chaining entries, each side's view, verification, checkpoints.

The chains themselves are pure (services/review/domain/audit.py, checkpoints.py); this
package reads and writes them: it appends an entry to the joint chain and to each side's
view chain (chain.py), renders a side's history with its chain fields, verifies a case for
the API and the CLI (verification.py), and issues signed checkpoints of every case's view
heads (checkpoints.py) with the keys of keys.py (docs/review.md, "Audit").
"""

from services.review.audit_service.chain import (
    chain_entry,
    entry_of,
    history_for,
    record_of,
    view_chains,
    view_entries,
)
from services.review.audit_service.checkpoints import (
    checkpoint_due,
    checkpoint_view,
    checkpoints_of,
    issue_checkpoint,
    issue_with_retry,
    proofs_for,
    public_key_view,
)
from services.review.audit_service.keys import KEY_FILE, AuditKeys
from services.review.audit_service.verification import (
    audit_verify_command,
    read_held_checkpoints,
    verify_all,
    verify_case,
)

__all__ = [
    "KEY_FILE",
    "AuditKeys",
    "audit_verify_command",
    "chain_entry",
    "checkpoint_due",
    "checkpoint_view",
    "checkpoints_of",
    "entry_of",
    "history_for",
    "issue_checkpoint",
    "issue_with_retry",
    "proofs_for",
    "public_key_view",
    "read_held_checkpoints",
    "record_of",
    "verify_all",
    "verify_case",
    "view_chains",
    "view_entries",
]
