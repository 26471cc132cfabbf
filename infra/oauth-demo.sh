#!/usr/bin/env bash
# Plays the browser through GitHub's OAuth flow on `make dev` started with `make fakes`'
# environment (.dev/fakes.env): a success, a replayed callback, a user who denies, and a
# customer's own app (BYOC). Prints what each step answered. Talks HTTP only.
#
#   bash infra/oauth-demo.sh            # API at http://127.0.0.1:${PORT:-3000}, key from .dev/api-key
set -euo pipefail

API=${API:-http://127.0.0.1:${PORT:-3000}}
KEY=${KEY:-$(cat "${DEV_DIR:-.dev}/api-key")}
BACK_TO=http://localhost:5173/done
COLLECTION=oauth-demo

json() { python3 -c "import json,sys; v=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
post() { curl -s "$API$1" -H "x-api-key: $KEY" -H 'content-type: application/json' -d "$2"; }
query() { python3 -c "import sys,urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query)[sys.argv[2]][0])" "$1" "$2"; }

post /collections "{\"name\": \"OAuth demo\", \"readable_id\": \"$COLLECTION\"}" >/dev/null

create() {
  post /source-connections "{\"short_name\": \"github\", \"readable_collection_id\": \"$COLLECTION\",
    \"config\": {\"repo_name\": \"octo-org/hello-world\"}, \"authentication\": $1,
    \"redirect_url\": \"$BACK_TO\"}"
}

echo "== browser flow with the platform's app"
created=$(create '{}')
id=$(echo "$created" | json 'v["id"]')
auth_url=$(echo "$created" | json 'v["auth"]["auth_url"]')
echo "created $id: $(echo "$created" | json 'v["status"]'), auth_url expires $(echo "$created" | json 'v["auth"]["auth_url_expires"]')"
echo "client_id in auth_url: $(query "$auth_url" client_id), code_challenge_method: $(query "$auth_url" code_challenge_method)"
back=$(curl -s -o /dev/null -w '%{redirect_url}' "$auth_url")
echo "the provider sends the browser to our callback: ${back%%\?*}"
echo "callback: $(curl -s -o /dev/null -w '%{http_code} -> %{redirect_url}' "$back")"
echo "the same callback again: $(curl -s -o /dev/null -w '%{http_code} (no redirect: %{redirect_url})' "$back")"
echo "connection: $(curl -s "$API/source-connections/$id" -H "x-api-key: $KEY" | json 'v["status"]')"

echo "== the user denies"
created=$(create '{}')
state=$(query "$(echo "$created" | json 'v["auth"]["auth_url"]')" state)
echo "callback: $(curl -s -o /dev/null -w '%{http_code} -> %{redirect_url}' "$API/oauth/callback?error=access_denied&state=$state")"

echo "== bring your own client"
created=$(create '{"client_id": "customer-github-app", "client_secret": "customer-github-app-secret"}')
id=$(echo "$created" | json 'v["id"]')
auth_url=$(echo "$created" | json 'v["auth"]["auth_url"]')
echo "client_id in auth_url: $(query "$auth_url" client_id)"
back=$(curl -s -o /dev/null -w '%{redirect_url}' "$auth_url")
echo "callback: $(curl -s -o /dev/null -w '%{http_code} -> %{redirect_url}' "$back")"
echo "connection: $(curl -s "$API/source-connections/$id" -H "x-api-key: $KEY" | json 'v["status"], v["auth"]["method"]')"
