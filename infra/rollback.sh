#!/usr/bin/env bash
# Roll the app back by hand: point each function's `live` alias (what API Gateway, the SQS
# event sources and the schedule call) at the version that was live before the current one.
# CodeDeploy already does this by itself when an alarm fires during a canary; this is for a
# problem found after a release finished (docs/release.md, "Rolling back by hand").
#
#   infra/rollback.sh --stage prod --dry-run        # show what would change, change nothing
#   infra/rollback.sh --stage prod                  # every function of paidres-prod-app
#   infra/rollback.sh --stage prod --function APIHandler [--to 41]
#   make rollback STAGE=prod [DRY_RUN=1] [FUNCTION=APIHandler]
#
# For each function (Lambda functions of the app stack, by logical id):
#   1. a CodeDeploy deployment still in flight (a canary) is stopped with auto-rollback: that
#      is the rollback, and the alias is left to CodeDeploy;
#   2. otherwise the alias's current version is read, and the previous one is
#      - the version the last successful CodeDeploy deployment to the current version
#        replaced (the one really live before: a version that was rolled back automatically
#        is skipped), or, when CodeDeploy has no record of it,
#      - the highest published version below the current one;
#      --to VERSION (with one --function) names it instead;
#   3. `aws lambda update-alias` moves the alias (not with --dry-run).
# Exits non-zero when any function could not be rolled back.
#
# Needs the AWS CLI v2 with credentials for the stage's account, and python3 (reads the
# CodeDeploy records). The stack keeps the version it deployed: deploy a fix, or the previous
# commit, to bring it back in step; the next deployment shifts from the version live now.
set -euo pipefail

ALIAS=live
DRY_RUN=0
STAGE=${STAGE:-}
STACK=""
TO=""
ONLY=()
PY=${PYTHON:-python3}

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  echo "options: --stage STAGE | --stack NAME, --function LOGICAL_ID (repeatable),"
  echo "         --to VERSION (one function only), --alias NAME (default live), --dry-run"
}
die() { echo "rollback: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --stage) STAGE=${2:?--stage needs a value}; shift 2 ;;
    --stack) STACK=${2:?--stack needs a value}; shift 2 ;;
    --function) ONLY+=("${2:?--function needs a value}"); shift 2 ;;
    --to) TO=${2:?--to needs a version}; shift 2 ;;
    --alias) ALIAS=${2:?--alias needs a value}; shift 2 ;;
    -n|--dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

if [[ -z $STACK ]]; then
  [[ -n $STAGE ]] || die "give --stage STAGE (stack paidres-STAGE-app) or --stack NAME"
  STACK="paidres-$STAGE-app"
fi
[[ -z $TO || ${#ONLY[@]} -eq 1 ]] || die "--to needs exactly one --function"
[[ -z $TO || $TO =~ ^[0-9]+$ ]] || die "--to takes a version number, not '$TO'"
command -v aws >/dev/null || die "the AWS CLI (aws) is not installed"

# LogicalId, PhysicalId, Type of every resource of the stack.
RESOURCES=$(aws cloudformation list-stack-resources --stack-name "$STACK" \
  --query 'StackResourceSummaries[].[LogicalResourceId,PhysicalResourceId,ResourceType]' \
  --output text)
physical() { awk -v id="$1" '$1 == id { print $2 }' <<<"$RESOURCES"; }
APPLICATION=$(physical ServerlessDeploymentApplication)

FUNCTIONS=()
while read -r name; do
  [[ -n $name ]] && FUNCTIONS+=("$name")
done < <(awk '$3 == "AWS::Lambda::Function" { print $1 }' <<<"$RESOURCES")
[[ ${#FUNCTIONS[@]} -gt 0 ]] || die "no Lambda functions in stack $STACK"
if [[ ${#ONLY[@]} -gt 0 ]]; then
  for name in "${ONLY[@]}"; do
    printf '%s\n' "${FUNCTIONS[@]}" | grep -qx -- "$name" \
      || die "$name is not a function of $STACK (${FUNCTIONS[*]})"
  done
  FUNCTIONS=("${ONLY[@]}")
fi

# The version the last successful deployment to version $3 replaced, from CodeDeploy's
# AppSpec records (application $1, deployment group $2); empty when there is none.
previous_from_codedeploy() {
  local app=$1 group=$2 current=$3 listed batch found i
  local -a ids
  [[ -n $app && -n $group ]] || return 0
  command -v "$PY" >/dev/null || return 0
  listed=$(aws deploy list-deployments --application-name "$app" \
    --deployment-group-name "$group" --include-only-statuses Succeeded \
    --query 'deployments' --output text)
  [[ -n $listed && $listed != None ]] || return 0
  read -r -a ids <<<"$listed"
  for ((i = 0; i < ${#ids[@]}; i += 25)); do
    batch=$(aws deploy batch-get-deployments --deployment-ids "${ids[@]:i:25}" \
      --query 'deploymentsInfo[].revision' --output json)
    found=$("$PY" -c '
import json, re, sys
current = sys.argv[1]
for revision in json.load(sys.stdin) or []:
    revision = revision or {}
    content = (revision.get("appSpecContent") or revision.get("string") or {}).get("content")
    def field(name):
        match = re.search(name + r"\W+(\d+)", content or "")
        return match.group(1) if match else None
    if field("TargetVersion") == current and field("CurrentVersion"):
        print(field("CurrentVersion"))
        break
' "$current" <<<"$batch")
    if [[ -n $found ]]; then echo "$found"; return 0; fi
  done
  return 0
}

# The highest published version below $2 of function $1; empty when there is none.
previous_published() {
  aws lambda list-versions-by-function --function-name "$1" \
    --query "Versions[?Version!='\$LATEST'].Version" --output text \
    | tr '\t' '\n' | grep -E '^[0-9]+$' | sort -n \
    | awk -v current="$2" '$1 + 0 < current + 0 { previous = $1 } END { print previous }' \
    || true
}

failed=0
for logical in "${FUNCTIONS[@]}"; do
  fn=$(physical "$logical")
  group=$(physical "${logical}DeploymentGroup")

  if [[ -n $APPLICATION && -n $group ]]; then
    inflight=$(aws deploy list-deployments --application-name "$APPLICATION" \
      --deployment-group-name "$group" \
      --include-only-statuses Created Queued InProgress Baking Ready \
      --query 'deployments[0]' --output text)
    if [[ -n $inflight && $inflight != None ]]; then
      if ((DRY_RUN)); then
        echo "$logical: deployment $inflight in flight; would stop it with auto-rollback (dry run)"
      else
        aws deploy stop-deployment --deployment-id "$inflight" --auto-rollback-enabled \
          --output text >/dev/null
        echo "$logical: stopped deployment $inflight with auto-rollback; CodeDeploy moves $ALIAS back"
      fi
      continue
    fi
  fi

  current=$(aws lambda get-alias --function-name "$fn" --name "$ALIAS" \
    --query FunctionVersion --output text)
  if [[ -n $TO ]]; then
    previous=$TO how="--to"
  else
    previous=$(previous_from_codedeploy "$APPLICATION" "$group" "$current")
    how="live before it, per CodeDeploy"
    if [[ -z $previous ]]; then
      previous=$(previous_published "$fn" "$current")
      how="the published version before it"
    fi
  fi
  if [[ -z $previous ]]; then
    echo "$logical: $ALIAS is at version $current and there is no earlier version" >&2
    failed=1
    continue
  fi
  if [[ $previous == "$current" ]]; then
    echo "$logical: $ALIAS is already at version $current"
    continue
  fi
  if ((DRY_RUN)); then
    echo "$logical ($fn): $ALIAS $current -> $previous ($how) (dry run)"
  else
    aws lambda update-alias --function-name "$fn" --name "$ALIAS" \
      --function-version "$previous" --query FunctionVersion --output text >/dev/null
    echo "$logical ($fn): $ALIAS $current -> $previous ($how)"
  fi
done
exit "$failed"
