// The CDKTF app's public API: the stack, how terraform runs it, and what its plan says per node.
export { ClusterStack, configurationRank, synthStack, templateLiteral, BOOT_PREFIX, CONFIG_PREFIX, VM_PREFIX, type NodeInputs, type NodeStep, type StackInputs } from './stack.ts';
export { PLAN_FILE, TerraformError, terraformBinary, terraformRunner, type TerraformRunner, type TerraformRunnerOptions } from './terraform.ts';
export { planIsEmpty, plannedChanges, summarizePlan, type NodePlanSummary, type PlannedAction, type PlannedChange, type TerraformPlanJson } from './plan-summary.ts';
export { configReplacements, driftReplacements, replaceArgs, type ConfigReplacement, type ObservedNode, type RecordedConfiguration } from './replacements.ts';
