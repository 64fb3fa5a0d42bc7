# Sourced by the shell tests: $tmp is a scratch folder removed on exit; `ok RESULT MESSAGE` counts
# a check (RESULT 1 passes; anything else fails and MESSAGE goes to stderr); `summary`, the last
# command of a test, prints the counts and fails after any failed check.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { if [ "$1" = 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $2" >&2; fi; }
summary() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
