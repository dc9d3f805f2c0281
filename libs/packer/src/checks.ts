import { shellQuote } from '@boxcar/kit';
import type { Layer, LayerChecks } from '@boxcar/model';
import { PackerBuildError } from './runner.ts';

// A layer's checks (layers.json "checks") as one bash script, run in the guest as the layer's last
// provisioner: after its scripts (cleanup.sh included) and after the staging files are removed, so
// it sees the image as it will be published. Every check runs and prints one line,
//   boxcar-check: ok <name>
//   boxcar-check: FAILED <name>: <why>
// and the script exits 1 when any failed, which fails the packer build: nothing is published, and
// the bake names the failed checks (failedChecks below reads them back from Packer's output).
// The script removes itself (Packer uploads it to /tmp, which cleanup.sh has already emptied).

export const CHECK_PREFIX = 'boxcar-check:';

/** The name each check reports under: `enabled:<unit>`, `absent:<glob>`, ..., or the command's name. */
export function checkNames(checks: LayerChecks): string[] {
  return [
    ...checks.servicesEnabled.map((unit) => `enabled:${unit}`),
    ...checks.servicesDisabled.map((unit) => `disabled:${unit}`),
    ...checks.absent.map((path) => `absent:${path}`),
    ...checks.empty.map((path) => `empty:${path}`),
    ...checks.commands.map((command) => command.name),
  ];
}

const HELPERS = `failed=0
total=0
failed_names=''
pass() {
  total=$((total + 1))
  printf '${CHECK_PREFIX} ok %s\\n' "$1"
}
fail() {
  total=$((total + 1))
  failed=$((failed + 1))
  failed_names="$failed_names $1"
  printf '${CHECK_PREFIX} FAILED %s: %s\\n' "$1" "$2"
}
unit_state() {
  local state
  state=$(systemctl is-enabled "$1" 2>/dev/null | head -n 1 || true)
  if [[ -z $state ]]; then state='unknown (no such unit?)'; fi
  printf '%s' "$state"
}
check_enabled() {
  local state
  state=$(unit_state "$1")
  if [[ $state == enabled ]]; then pass "enabled:$1"; else fail "enabled:$1" "systemctl is-enabled says $state"; fi
}
check_disabled() {
  local state
  state=$(unit_state "$1")
  case $state in
    disabled | masked | masked-runtime) pass "disabled:$1" ;;
    *) fail "disabled:$1" "systemctl is-enabled says $state, expected disabled or masked" ;;
  esac
}
check_absent() {
  local found
  found=$(compgen -G "$1" | head -n 5 | tr '\\n' ' ' || true)
  if [[ -z $found ]]; then pass "absent:$1"; else fail "absent:$1" "present: $found"; fi
}
check_empty() {
  if [[ ! -f $1 ]]; then
    fail "empty:$1" 'no such file'
  elif [[ -s $1 ]]; then
    fail "empty:$1" "$(wc -c <"$1") bytes"
  else
    pass "empty:$1"
  fi
}
check_command() {
  local output status=0
  output=$(bash -eo pipefail -c "$2" </dev/null 2>&1) || status=$?
  if [[ $status -eq 0 ]]; then
    pass "$1"
  else
    fail "$1" "exit $status: $(printf '%s\\n' "$output" | tail -n 1)"
  fi
}`;

/** The layer's check script, or none when it declares no check. Pure: the same layer gives the same text. */
export function checkScript(layer: Pick<Layer, 'name' | 'checks'>): string | undefined {
  const { checks } = layer;
  if (checkNames(checks).length === 0) return undefined;
  const calls = [
    ...checks.servicesEnabled.map((unit) => `check_enabled ${shellQuote(unit)}`),
    ...checks.servicesDisabled.map((unit) => `check_disabled ${shellQuote(unit)}`),
    ...checks.absent.map((path) => `check_absent ${shellQuote(path)}`),
    ...checks.empty.map((path) => `check_empty ${shellQuote(path)}`),
    ...checks.commands.map((command) => `check_command ${shellQuote(command.name)} ${shellQuote(command.run)}`),
  ];
  return [
    '#!/usr/bin/env bash',
    ...(checks.commands.length ? ['# shellcheck disable=SC2016 # commands are given quoted: their expansions are for the bash that runs them'] : []),
    `# boxcar: the checks of layer "${layer.name}" (generated from its layers.json "checks").`,
    'set -euo pipefail',
    '# Leave nothing behind: the image is sealed already.',
    'rm -f -- "$0"',
    HELPERS,
    ...calls,
    'if [[ $failed -gt 0 ]]; then',
    `  printf '${CHECK_PREFIX} %d of %d failed:%s\\n' "$failed" "$total" "$failed_names"`,
    '  exit 1',
    'fi',
    `printf '${CHECK_PREFIX} all %d passed\\n' "$total"`,
    '',
  ].join('\n');
}

export interface FailedCheck {
  name: string;
  why: string;
}

const FAILED_LINE = /boxcar-check: FAILED (\S+): (.*)$/;

/** The failed checks reported in Packer's output lines (provisioner output, any prefix before it). */
export function failedChecks(lines: Iterable<string>): FailedCheck[] {
  const found: FailedCheck[] = [];
  for (const line of lines) {
    const match = FAILED_LINE.exec(line.trim());
    if (match && !found.some((check) => check.name === match[1])) found.push({ name: match[1]!, why: match[2]!.trim() });
  }
  return found;
}

/**
 * A failed packer build whose output reported failed checks, as the same error naming them (the
 * step alone would say "Provisioning with shell script: /tmp/packer-shell…"); any other error as it is.
 */
export function namingFailedChecks(error: unknown, lines: Iterable<string>): unknown {
  const failed = failedChecks(lines);
  if (!(error instanceof PackerBuildError) || failed.length === 0) return error;
  const named = failed.map((check) => `${check.name} (${check.why})`).join(', ');
  return new PackerBuildError(`${error.message}: layer check${failed.length === 1 ? '' : 's'} failed: ${named}`, error.step, error.lastLines, error.logFile, error.interrupted);
}
