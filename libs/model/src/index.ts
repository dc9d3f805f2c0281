// The public API of @boxcar/model; what is not named here is private to the library.

// The cluster: its types, loading cluster.config.json over a profile's defaults, validated.
export {
  PROVIDERS,
  type Cluster,
  type ClusterNode,
  type NicSpec,
  type Problem,
  type Profile,
  type ProviderName,
  type Role,
  type TerraformResourceType,
} from './types.ts';
export { DEFAULT_CNI_DIR, loadCluster, REPO_ROOT } from './config-file.ts';
export { ClusterConfigError, resolveClusterOrThrow } from './resolve.ts';
// A libvirt URI that would make libvirt run a program (the ext transport, command=), refused.
export { LIBVIRT_TRANSPORTS, libvirtUriProblem } from './cluster-semantics.ts';

// Image profiles (images/profiles/<profile>/) and their layers.
export { DEFAULT_PROFILE, DEFAULT_PROFILES_DIR, listProfiles, loadProfile, NATIVE_BUILD_SCRIPT } from './profile.ts';
export {
  BOOTSTRAP_USER,
  BUILDER_OF_SOURCE,
  BUILDERS,
  type BaseSource,
  type BuilderName,
  type BuildStage,
  type HashedFile,
  type Layer,
  type LayerArtifact,
  type LayerBuildUse,
  type LayerChecks,
  type LayerGraph,
} from './layer.ts';

// Addresses.
export { cidrContainsIp, ipToInt, parseCidr } from './ip.ts';

// JSON: reading with syntax errors located by line and column, and the canonical form that keys hash.
export { JsonSyntaxError, parseJsonText, readJsonFile } from './json-file.ts';
export { locateJsonSyntaxError } from './json-syntax.ts';
export { canonicalJson } from './canonical-json.ts';

// A node of the cluster by name.
export { checkNodeName, findNode, NODE_NAME_PATTERN } from './find-node.ts';

// Input problems, each with its field path, and checking JSON against the schemas in libs/model/schemas/.
export { formatProblems, InputProblemsError, isAtOrUnder, ProblemList } from './problems.ts';
export { show, validateJson, type JsonSchema, type SchemaRegistry } from './json-schema.ts';
export { checkShape, schemaRegistry, SCHEMA_FILES, SCHEMAS_DIR, withoutSchemaKey, type SchemaName } from './schemas.ts';

// The name a cluster snapshot may have.
export { checkSnapshotName, isSnapshotWord, RESERVED_SNAPSHOT_NAMES, STOPPED_SNAPSHOT } from './snapshot-name.ts';
