"""Words the console shows from data (roles, actions, states, refusal reasons), marked
here so that the catalogue extraction finds them; templates translate them with `_()`."""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark `message` for extraction; it is translated where it is shown."""
    return message


WORDS = (
    # staff roles and node roles
    N_("officer"),
    N_("approver"),
    N_("auditor"),
    N_("admin"),
    N_("police"),
    N_("bank"),
    N_("carrier"),
    N_("regulator"),
    # actions (formatting.ACTION_NAMES)
    N_("Stop-payment"),
    N_("Freeze"),
    N_("Extension"),
    N_("Release"),
    N_("Number suspension"),
    N_("Number restoration"),
    N_("Return of funds"),
    N_("Inquiry"),
    # states of requests, drafts and holds
    N_("requested"),
    N_("executed"),
    N_("rejected"),
    N_("partial"),
    N_("extended"),
    N_("released"),
    N_("expired"),
    N_("drafted"),
    N_("approved"),
    N_("failed"),
    N_("active"),
    # a return against its due date (gateway.console.fundview.due_state)
    N_("met"),
    N_("late"),
    N_("overdue"),
    N_("pending"),
    # inquiry answer fields (gateway.console.fundview.FIELD_LABELS)
    N_("Holder's name"),
    N_("Status"),
    N_("Balance"),
    N_("Amount held"),
    N_("Transactions"),
    # identifier kinds (formatting.KIND_NAMES)
    N_("ID card number"),
    N_("Phone number"),
    N_("Bank card number"),
    N_("Account number"),
    # nav labels
    N_("Cases"),
    N_("Match query"),
    N_("Drafts and approvals"),
    N_("Actions"),
    N_("Requests and holds"),
    N_("Users"),
    # refusal reasons of nodes.staff, shown as they come
    N_("wrong user, password or code"),
    N_("that code was used already; wait for the next one"),
    N_("nobody may decide their own draft"),
    N_("the draft changed after you viewed it; view it again"),
    N_("the draft was decided meanwhile"),
    N_("the draft was sent already"),
    N_("give a reason for the rejection"),
    N_("the stored draft does not match its hash; it was altered"),
)
