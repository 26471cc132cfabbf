#!/usr/bin/env bash
# Lints template.yaml, offline: cfn-lint with the serverless rules (cfn-lint-serverless), then
# `sam validate --lint`. Both run from the emulator's venv (.dev/venv), where infra/emulator.sh
# installs them, pinned, with moto. Any error or warning fails it (cfn-lint exits non-zero on
# warnings too); a rule a resource may break is ignored on that resource, in the template.
#
#   bash infra/lint-template.sh
#
# Environment: DEV_DIR (default <repo>/.dev), as for infra/emulator.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

python="$(bash "$ROOT/infra/emulator.sh" python)"
bin="$(dirname "$python")"

# Neither tool needs AWS. They get a region, dummy credentials and no profile or shared config;
# SAM CLI's telemetry is off; and an AWS endpoint nothing listens on, so a call that tried to reach
# AWS (or the emulator, whose variables `make test` exports) would fail instead.
offline=(env -u AWS_PROFILE -u AWS_SESSION_TOKEN
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    AWS_ACCESS_KEY_ID=lint AWS_SECRET_ACCESS_KEY=lint
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL=http://127.0.0.1:9
    SAM_CLI_TELEMETRY=0)

echo "lint-template: \$ cfn-lint template.yaml --append-rules cfn_lint_serverless.rules"
"${offline[@]}" "$bin/cfn-lint" template.yaml --append-rules cfn_lint_serverless.rules
echo "lint-template: \$ sam validate --lint --template-file template.yaml"
"${offline[@]}" "$bin/sam" validate --lint --template-file template.yaml
echo "lint-template: template.yaml passed both linters"
