"""Writes the example Northstar Workspaces data set (train, val, hidden labels, taxonomy).

Run by hand from this folder: `python3 make_data.py`. The tickets, replies and product terms are our
own invention. Each intent has four training tickets and two validation tickets; five extra validation
rows are regression probes (fresh, plainer paraphrases of common intents).
"""

import json

# intent -> (reply used for every row of the intent, must-mention terms, must-not-mention terms)
REPLIES = {
    "billing.seat_question": (
        "Guests do not use a Star seat. Only full members count toward the seat limit shown on the Billing page.",
        ["seat", "Billing page"],
        ["refund"],
    ),
    "billing.invoice_request": (
        "You can download every invoice as a PDF from the Billing page under Invoices. Admins can also add a billing email.",
        ["invoice", "Billing page"],
        ["password"],
    ),
    "billing.refund_request": (
        "Annual plans can be refunded within 30 days. Please open a refund request from the Billing page and we will reply in two business days.",
        ["refund", "30 days"],
        ["free forever"],
    ),
    "account.password_reset": (
        "Use the Forgot password link on the sign-in page. The reset email expires after one hour, so check your spam folder.",
        ["reset", "email"],
        ["invoice"],
    ),
    "account.sso_setup": (
        "SSO with SAML is available on the Constellation plan. An owner can turn it on in the Admin Console under Security.",
        ["SAML", "Admin Console"],
        ["password reset"],
    ),
    "workspace.guest_access": (
        "Invite guests from the Share menu of a workspace. Guests only see the boards you share with them and can be removed at any time.",
        ["guest", "Share menu"],
        ["seat limit exceeded"],
    ),
    "workspace.data_export": (
        "Owners can export a workspace as a ZIP of JSON and CSV files from Settings, Export. Large exports are emailed when ready.",
        ["export", "Settings"],
        ["delete"],
    ),
    "integrations.slack_sync": (
        "Reconnect the Slack integration in Settings, Integrations, then choose the channels again. Beacon alerts resume within a few minutes.",
        ["Slack", "reconnect"],
        ["refund"],
    ),
    "sync.desktop_error": (
        "Sign out of the Northstar desktop app, clear the local cache from Preferences, and sign in again. Your boards will resync from the cloud.",
        ["cache", "sign in"],
        ["export"],
    ),
    "plan.upgrade_inquiry": (
        "You can upgrade from Orbit to Constellation at any time in the Billing page. You only pay the prorated difference for this cycle.",
        ["Constellation", "prorated"],
        ["refund"],
    ),
}

TRAIN = {
    "billing.seat_question": [
        "Hey, when I share a workspace with a guest, do they count toward our seat limit?",
        "How many Star seats do we use if half the team only views boards?",
        "We hit our seat cap. Do external collaborators take a seat?",
        "Does adding a contractor to one board use up one of our paid seats?",
    ],
    "billing.invoice_request": [
        "Where can I get a PDF invoice for last month?",
        "Our finance team needs copies of all invoices from this year.",
        "Can you send the invoice to our accounts payable email instead of mine?",
        "I need an invoice with our VAT number on it for the March charge.",
    ],
    "billing.refund_request": [
        "We were charged for the annual plan by mistake, can we get our money back?",
        "I cancelled last week but still got billed. I want a refund.",
        "Please refund the second charge on our card, it was a duplicate.",
        "We bought the wrong plan yesterday. Is a refund possible?",
    ],
    "account.password_reset": [
        "I forgot my password and can't log in.",
        "The password reset link in my email says it has expired.",
        "How do I change my password? I think my account was compromised.",
        "I never received the reset email after clicking forgot password.",
    ],
    "account.sso_setup": [
        "How do we set up single sign-on with Okta?",
        "Our IT team wants to enforce SAML login for everyone.",
        "Is SSO with Azure AD supported and where do I configure it?",
        "Can we require employees to log in through our identity provider?",
    ],
    "workspace.guest_access": [
        "How do I invite a client to look at one board without seeing everything?",
        "Can I give an outside freelancer access to a single workspace?",
        "A guest can see boards they shouldn't. How do I limit what guests see?",
        "How do I remove an external guest from our workspace?",
    ],
    "workspace.data_export": [
        "How can I export all of our boards before we migrate?",
        "Is there a way to download our workspace data as CSV?",
        "I need a full backup of everything in our workspace.",
        "Can I export the comments and attachments from a project?",
    ],
    "integrations.slack_sync": [
        "Beacon alerts stopped posting to our Slack channel.",
        "The Slack integration disconnected after we renamed our workspace.",
        "Slack notifications from Northstar arrive twice, how do I fix it?",
        "How do I pick which Slack channel gets board updates?",
    ],
    "sync.desktop_error": [
        "The desktop app is stuck on 'syncing' and my changes don't show up.",
        "I get a sync error 409 in the Northstar desktop app.",
        "My boards on the desktop app are out of date compared to the web.",
        "The Mac app keeps showing an offline banner even though I'm online.",
    ],
    "plan.upgrade_inquiry": [
        "What does it cost to move from Orbit to Constellation?",
        "If we upgrade in the middle of the month, how are we charged?",
        "We need more automation runs. Which plan should we upgrade to?",
        "Can I try the Constellation features before upgrading?",
    ],
}

VAL = {
    "billing.seat_question": [
        "Do view-only guests take one of our seats on the Orbit plan?",
        "We're at 25 seats. Would inviting two agency people push us over?",
    ],
    "billing.invoice_request": [
        "How do I download the receipt for our last payment?",
        "Could you reissue an invoice with our new company address?",
    ],
    "billing.refund_request": [
        "We upgraded by accident this morning, can you reverse the charge?",
        "I'd like my money back for the unused months of our annual plan.",
    ],
    "account.password_reset": [
        "Locked out of my account, the forgot password email never arrives.",
        "How can I set a new password for my login?",
    ],
    "account.sso_setup": [
        "Does Northstar support SAML with Google Workspace as the identity provider?",
        "We want to turn on single sign-on for the whole company.",
    ],
    "workspace.guest_access": [
        "How do I let a customer comment on one board only?",
        "What can a guest see once I invite them?",
    ],
    "workspace.data_export": [
        "How do I get a copy of all our workspace data?",
        "We're leaving Northstar, can we take our boards with us as files?",
    ],
    "integrations.slack_sync": [
        "Our Slack channel no longer gets Northstar updates.",
        "After changing Slack admins the integration broke.",
    ],
    "sync.desktop_error": [
        "Desktop app shows old data and won't refresh.",
        "Windows app says sync failed, please retry.",
    ],
    "plan.upgrade_inquiry": [
        "How much more is Constellation per month than Orbit?",
        "If I upgrade today do I pay the full month again?",
    ],
}

# Regression probes: plain-language paraphrases of common intents, mixed into val.
PROBES = [
    ("account.password_reset", "I can't remember the password for my account. What should I do?"),
    ("billing.invoice_request", "Please send me the bill for what we paid last month."),
    ("billing.refund_request", "I paid twice. Give me my money back please."),
    ("workspace.guest_access", "I want someone outside my company to see one of my boards."),
    ("plan.upgrade_inquiry", "What do I get if I pay for the bigger plan?"),
]

SYNONYMS = {
    "billing.seats": "billing.seat_question",
    "billing.invoice": "billing.invoice_request",
    "billing.refund": "billing.refund_request",
    "account.password": "account.password_reset",
    "account.sso": "account.sso_setup",
    "workspace.guests": "workspace.guest_access",
    "workspace.export": "workspace.data_export",
    "integrations.slack": "integrations.slack_sync",
    "sync.desktop": "sync.desktop_error",
    "plan.upgrade": "plan.upgrade_inquiry",
}


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    train, val, labels = [], [], []
    for intent, tickets in TRAIN.items():
        for ticket in tickets:
            train.append({
                "id": f"ex_{len(train) + 1:03d}",
                "ticket": ticket,
                "intent": intent,
                "ideal_reply": REPLIES[intent][0],
            })
    cases = [(i, t, False) for i, ts in VAL.items() for t in ts]
    cases += [(i, t, True) for i, t in PROBES]
    for n, (intent, ticket, probe) in enumerate(cases, start=1):
        row_id = f"val_{n:03d}"
        val.append({"id": row_id, "ticket": ticket})
        reply, must, must_not = REPLIES[intent]
        labels.append({
            "id": row_id,
            "intent": intent,
            "ideal_reply": reply,
            "must_mention": must,
            "must_not_mention": must_not,
            "probe": probe,
        })
    write_jsonl("train.jsonl", train)
    write_jsonl("val.jsonl", val)
    write_jsonl("labels.jsonl", labels)
    with open("taxonomy.json", "w", encoding="utf-8") as f:
        json.dump({"intents": list(REPLIES), "synonyms": SYNONYMS}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
