"""The operator's command line for a stage's signing keys and Stripe secrets (the functions
themselves only read them: `chalicelib.accounts.keys`, `chalicelib.vault`).

    STAGE=prod python -m devstack.keys init|rotate|retire
    STAGE=prod STRIPE_SECRET_KEY=sk_live_... STRIPE_WEBHOOK_SECRET=whsec_...[,whsec_old] \
        python -m devstack.keys stripe

`init` creates the secrets document; `rotate` adds a new signing key (the old one still
verifies), `retire` drops every key but the signer; `stripe` stores the Stripe API key and
webhook signing secrets in the same document, where a deployed stage reads them.
"""
from __future__ import annotations

import os
import sys

from devstack import stage


def main(argv: list[str]) -> int:
    # The operator names the stage; its parameter name and region come from .chalice/config.json.
    stage.load(os.environ.get("STAGE", "dev"))
    from chalicelib import vault
    from chalicelib.accounts.keys import install, new_secrets_document, retire, rotate

    command = argv[0] if argv else ""
    if command == "init":
        install(new_secrets_document())
    elif command == "stripe":
        vault.forget()
        doc = dict(vault.load())
        doc["stripe_secret_key"] = os.environ["STRIPE_SECRET_KEY"]
        doc["stripe_webhook_secrets"] = [s.strip() for s in
                                         os.environ["STRIPE_WEBHOOK_SECRET"].split(",")
                                         if s.strip()]
        vault.store(doc)
    elif command in ("rotate", "retire"):
        vault.forget()
        doc = vault.load()
        install(rotate(doc) if command == "rotate" else retire(doc))
    else:
        print(__doc__)
        return 2
    print(f"{command}: signing key is now {vault.load()['jwt']['active_kid']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
