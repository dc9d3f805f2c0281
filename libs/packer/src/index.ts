// The public API of @boxcar/packer; what is not named here is private to the library.

// Which Packer is installed, and what it supports (required_plugins and `packer init` on 1.7+).
export { detectPacker, type PackerFeatures } from './version.ts';

// A layer's template (HCL2 JSON) and the files written beside it.
export { layerTemplate, templateFiles, type TemplateVariables } from './template.ts';

// A layer's checks as the script of its last provisioner, and the failed ones read back from Packer's output.
export { checkNames, checkScript, failedChecks, namingFailedChecks, type FailedCheck } from './checks.ts';

// Running Packer: init, validate, build (-machine-readable, parsed into progress).
export { initPlugins, PackerBuildError, runPackerBuild, validateTemplate } from './runner.ts';

// Where a bake's time goes: seconds per phase of a packer run.
export { BAKE_PHASES, packerPhases, type BakePhase, type PhaseSeconds } from './phases.ts';
