"""Verifies delivered webhooks with the receivers' own packages: Standard Webhooks' reference
verifier on the `webhook-*` headers and Svix's SDK on the `svix-*` headers.

stdin: {"secret": "whsec_...", "deliveries": [{"headers": {name: value}, "body": "..."}]}
stdout: {"verified": <deliveries both accepted>, "tampered_refused": <tampered copies refused>}
Exits 1 naming the first delivery either verifier refuses.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook


def only(headers, prefix):
    return {k: v for k, v in headers.items() if k.lower().startswith(prefix)}


def refused(verifier, body, headers):
    try:
        verifier.verify(body, headers)
    except Exception:  # noqa: BLE001 - either package's verification error
        return True
    return False


def main():
    given = json.load(sys.stdin)
    standard = StandardWebhook(given["secret"])
    svix = SvixWebhook(given["secret"])
    verified = tampered_refused = 0
    for i, delivery in enumerate(given["deliveries"]):
        body, headers = delivery["body"], delivery["headers"]
        try:
            standard.verify(body, only(headers, "webhook-"))
            svix.verify(body, only(headers, "svix-"))
        except Exception as e:  # noqa: BLE001
            print(f"delivery {i} refused: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(1)
        verified += 1
        tampered = body.replace('"', "'", 1)
        if refused(standard, tampered, only(headers, "webhook-")) and refused(
            svix, tampered, only(headers, "svix-")
        ):
            tampered_refused += 1
    print(json.dumps({"verified": verified, "tampered_refused": tampered_refused}))


if __name__ == "__main__":
    main()
