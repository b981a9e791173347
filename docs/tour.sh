#!/usr/bin/env bash
# The README's five-minute tour, as one script: an agency, its people, a gallery, a legal basis,
# a refused and an accepted search, two reviews, and the ledger checked offline.
#
#   bash docs/tour.sh PHOTOS_DIR [PROBE]
#
# Run it from the directory where `facewarden init` and `facewarden serve` were run (so that
# `facewarden` commands and the mail outbox are the server's), on a fresh instance. Every photo
# in PHOTOS_DIR (JPEG or PNG, one face each) is enrolled in the gallery, except PROBE, which is
# the image searched for; it defaults to the last photo of PHOTOS_DIR. For a match, put two
# photos of one person in the directory and pass a third as PROBE.
#
# Needs bash, curl, python3 (for JSON) and GNU date. The server is FACEWARDEN_PUBLIC_URL
# (https://127.0.0.1:8443); its data directory is FACEWARDEN_DATA_DIR (./var), where the
# certificate to pin and, without FACEWARDEN_SMTP_URL, the mailed claim secrets are read.
set -euo pipefail

PHOTOS=${1:?usage: docs/tour.sh PHOTOS_DIR [PROBE]}
URL=${FACEWARDEN_PUBLIC_URL:-https://127.0.0.1:8443}
DATA=${FACEWARDEN_DATA_DIR:-var}
CACERT=${FACEWARDEN_TLS_CERT_PATH:-$DATA/tls/cert.pem}
OUTBOX=${FACEWARDEN_MAIL_OUTBOX_DIR:-$DATA/mail/outbox}
mapfile -t GALLERY < <(find -L "$PHOTOS" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort)
PROBE=${2:-${GALLERY[-1]}}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/facewarden-tour.XXXXXX")
echo "tour: $URL, photos from $PHOTOS, probe $PROBE, output in $OUT"

# api STATUS METHOD PATH [curl options]: one request; stops the tour unless it answers STATUS.
# The answer's body is kept in $BODY for `show` and `field`.
api() {
  local expected=$1 method=$2 path=$3
  shift 3
  BODY=$(curl -sS --cacert "$CACERT" -X "$method" "$URL$path" -w '\n%{http_code}' "$@")
  STATUS=${BODY##*$'\n'}
  BODY=${BODY%$'\n'*}
  if [[ $STATUS != "$expected" ]]; then
    echo "$method $path answered $STATUS, not $expected:" >&2
    echo "$BODY" >&2
    exit 1
  fi
}

# field PATH: one value of the last answer, by a dotted path such as candidates.0.face_id.
field() {
  python3 -c '
import json, sys
value = json.loads(sys.argv[1])
for key in sys.argv[2].split("."):
    value = value[int(key)] if isinstance(value, list) else value[key]
print(value if isinstance(value, str) else json.dumps(value))
' "$BODY" "$1"
}

# show PATH...: the last answer's status and the named fields of its body, on one line.
show() {
  python3 -c '
import json, sys
body, shown = json.loads(sys.argv[2]), {}
for path in sys.argv[3:]:
    value = body
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    shown[path] = value
print(sys.argv[1], json.dumps(shown, ensure_ascii=False))
' "$STATUS" "$BODY" "$@"
}

# claim_secret EMAIL: the claim secret in the newest message to EMAIL in the outbox.
claim_secret() {
  python3 -c '
import email, email.policy, pathlib, re, sys
outbox, to = pathlib.Path(sys.argv[1]), sys.argv[2]
for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    if message["To"] == to:
        print(re.search(r"^Claim secret: (\S+)", message.get_content(), re.M).group(1))
        break
else:
    sys.exit(f"no message to {to} in {outbox}")
' "$OUTBOX" "$1"
}

# person FIRST LAST EMAIL JOB: a person's contact details, as the API takes them.
person() {
  printf '{"first_name": "%s", "last_name": "%s", "phone": "+33 4 72 00 00 00", "email": "%s", "job_title": "%s"}' "$@"
}

echo
echo "== 0. Is it ready?"
api 200 GET /readyz
show status checks.model_pack.detail

echo
echo "== 1. The first administrator, created on the server's command line"
ADMIN=$(facewarden admin create --email admin@example.org --name "Ada Admin" 2>&1 | tail -1)
echo "ADMIN=${ADMIN:0:12}…"

echo
echo "== 2. An agency applies (no key)"
api 202 POST /v1/registrations -H 'Content-Type: application/json' -d @- <<JSON
{"agency": {"name": "Police judiciaire de Lyon", "kind": "police", "country": "FR", "jurisdiction": "Rhône"},
 "contact": $(person Camille Martin camille.martin@police.example Commissaire),
 "intended_use": "Identify suspects in serious crimes from CCTV stills, under a judge's warrant."}
JSON
show id status
RID=$(field id)

echo
echo "== 3. The administrator approves it; the claim secret is mailed to the contact, who claims the first key"
api 200 POST "/v1/registrations/$RID/approve" -H "Authorization: Bearer $ADMIN" \
  -H 'Content-Type: application/json' -d '{"reason": "Warrant-based use confirmed with the Lyon prosecutor"}'
show status agency_id account_id
SECRET=$(claim_secret camille.martin@police.example)
api 201 POST "/v1/registrations/$RID/claim" -H 'Content-Type: application/json' \
  -d "{\"claim_secret\": \"$SECRET\"}"
show credential.status credential.expires_at
SUPERVISOR=$(field api_key)
api 409 POST "/v1/registrations/$RID/claim" -H 'Content-Type: application/json' \
  -d "{\"claim_secret\": \"$SECRET\"}"
show type status

# An account request: the supervisor asks, an administrator approves, the person named claims.
# request_account ROLE PERSON_JSON EMAIL: sets $KEY to the new account's API key.
request_account() {
  api 202 POST /v1/account-requests -H "Authorization: Bearer $SUPERVISOR" \
    -H 'Content-Type: application/json' -d "{\"role\": \"$1\", \"person\": $2}"
  show id status
  local request_id
  request_id=$(field id)
  api 200 POST "/v1/account-requests/$request_id/approve" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"reason": "Named by the agency'"'"'s supervisor"}'
  show status role account_id
  api 201 POST "/v1/account-requests/$request_id/claim" -H 'Content-Type: application/json' \
    -d "{\"claim_secret\": \"$(claim_secret "$3")\"}"
  show credential.status
  KEY=$(field api_key)
}

echo
echo "== 3b. A second supervisor and an investigator, by account requests"
# Two people other than the searcher must review a search's candidates before one is a lead,
# so the agency needs two colleagues besides its investigator: a second supervisor.
request_account supervisor "$(person Louis Bernard louis.bernard@police.example Commandant)" louis.bernard@police.example
SUPERVISOR2=$KEY
request_account investigator "$(person Inès Moreau ines.moreau@police.example Capitaine)" ines.moreau@police.example
INVESTIGATOR=$KEY

echo
echo "== 3c. A gallery curator, created by the administrator as staff and claimed the same way"
api 201 POST /v1/staff -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d "{\"role\": \"curator\", \"person\": $(person Jean Dupont jean.dupont@gallery.example 'Gallery curator')}"
show id status
STAFF_ID=$(field id)
api 201 POST "/v1/account-requests/$STAFF_ID/claim" -H 'Content-Type: application/json' \
  -d "{\"claim_secret\": \"$(claim_secret jean.dupont@gallery.example)\"}"
show credential.status
CURATOR=$(field api_key)

echo
echo "== 4. The curator enrols the gallery photos with their provenance"
COLLECTED_AT=$(date -u -d '30 days ago' +%Y-%m-%dT%H:%M:%SZ)
ENROLLED=0
for photo in "${GALLERY[@]}"; do
  [[ $photo == "$PROBE" ]] && continue
  ENROLLED=$((ENROLLED + 1))
  api 201 POST /v1/gallery/photos -H "Authorization: Bearer $CURATOR" -F "image=@$photo" \
    -F "source_url=https://www.flickr.com/photos/example/$(basename "$photo")" \
    -F "collected_at=$COLLECTED_AT" -F collection_basis=public_record
  show source_site collection_basis pack_name
done
# On a Milvus server read at Session consistency (deploy/run), a face that one worker enrolled
# reaches the other workers' searches once the index has consumed it, within about a time tick
# (docs/vector-index.md): wait, silently, until the index counts the gallery.
for _ in $(seq 1 50); do
  BODY=$(curl -sS --cacert "$CACERT" "$URL/readyz" || true)
  COUNTED=$( (field checks.vector_index.detail 2>/dev/null || true) | sed -n 's/.*: \([0-9]*\) faces$/\1/p')
  [[ ${COUNTED:-0} -ge $ENROLLED ]] && break
  sleep 0.2
done

echo
echo "== 5. The investigator records a legal basis; a search under it is refused until a supervisor approves"
ISSUED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EXPIRES_AT=$(date -u -d '30 days' +%Y-%m-%dT%H:%M:%SZ)
ABDUCTED_ON=$(date -u -d '7 days ago' +%Y-%m-%d)
CASE=PJ-LYON-$(date -u +%Y)-00417
api 201 POST /v1/legal-bases -H "Authorization: Bearer $INVESTIGATOR" -H 'Content-Type: application/json' -d @- <<JSON
{"case_number": "$CASE", "offence_category": "kidnapping_hostage_taking",
 "legal_provision": "Code de procédure pénale, art. 706-96",
 "authorisation": {"kind": "judicial", "reference": "JLD-2026-1187", "authority": "Tribunal judiciaire de Lyon",
                   "issued_at": "$ISSUED_AT", "expires_at": "$EXPIRES_AT"},
 "justification": "A child was abducted on $ABDUCTED_ON; the CCTV still of the suspect must be compared with the gallery.",
 "max_searches": 5}
JSON
show status searches_used searches_left
BASIS_ID=$(field id)
api 403 POST /v1/searches -H "Authorization: Bearer $INVESTIGATOR" -F "image=@$PROBE" \
  -F "legal_basis_id=$BASIS_ID" -F purpose="identify the abductor"
show type status legal_basis_state
api 200 POST "/v1/legal-bases/$BASIS_ID/approve" -H "Authorization: Bearer $SUPERVISOR2" \
  -H 'Content-Type: application/json' -d '{"reason": "Warrant JLD-2026-1187 checked"}'
show status searches_used searches_left

echo
echo "== 6. The search: candidates at or above the pack's calibrated threshold, and a ledger receipt"
api 201 POST /v1/searches -H "Authorization: Bearer $INVESTIGATOR" -F "image=@$PROBE" \
  -F "legal_basis_id=$BASIS_ID" -F purpose="identify the abductor" -F top_k=3
echo "$BODY" >"$OUT/search.json"
show gallery_size threshold top_k receipt.seq receipt.tree_size
SEARCH_ID=$(field id)
python3 -c '
import json, sys
for c in json.load(open(sys.argv[1]))["candidates"]:
    print("  rank %(rank)s  similarity %(similarity).4f  %(source_url)s" % c)
' "$OUT/search.json"

echo
echo "== 6b. Two colleagues of the investigator review the first candidate"
if [[ $(field candidates) == "[]" ]]; then
  echo "no candidate to review: put two photos of the probe's person in $PHOTOS"
else
  FACE_ID=$(field candidates.0.face_id)
  for reviewer in "$SUPERVISOR" "$SUPERVISOR2"; do
    api 201 POST "/v1/searches/$SEARCH_ID/reviews" -H "Authorization: Bearer $reviewer" \
      -H 'Content-Type: application/json' \
      -d "{\"reviews\": [{\"face_id\": \"$FACE_ID\", \"verdict\": \"possible_match\", \"note\": \"Same scar above the left eyebrow\"}]}"
    show review_state
  done
  api 200 GET "/v1/searches/$SEARCH_ID" -H "Authorization: Bearer $INVESTIGATOR"
  show review_state candidates.0.possible_match_votes candidates.0.confirmed_lead
fi

echo
echo "== 7. Anyone holding the log's public key checks the receipt, and the whole ledger, offline"
KEY=$(facewarden ledger key)
facewarden-verify receipt "$OUT/search.json" --key "$KEY"
facewarden ledger export "$OUT/bundle"
facewarden-verify bundle "$OUT/bundle" --key "$KEY"
