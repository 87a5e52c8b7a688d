/**
 * The OpenAPI v2 definitions of the built-in kinds the fake kube-apiserver stores, written
 * from the Kubernetes API reference: one table that serves three purposes, as the real
 * schemas do in kube-apiserver.
 *
 * - kubectl downloads them (`/openapi/v2`, kube-openapi.ts) and validates every object it
 *   sends against them: an unknown field or a wrong type fails `kubectl apply` on the client.
 * - kubectl reads the patch strategies (`x-kubernetes-patch-strategy`/`-merge-key`) from
 *   them to compute its strategic merge patches, and the fake applies those patches with
 *   the same strategies (kube-strategic-merge.ts), as the Go struct tags drive the server.
 * - The top-level definitions carry `x-kubernetes-group-version-kind`, which is how kubectl
 *   finds the schema of a kind.
 *
 * Design note: only the fields a kubegate manifest or a kubectl client plausibly sends are
 * described; a field outside this table fails validation in kubectl ("unknown field"), so a
 * gap shows up as a loud test failure, never as silently accepted nonsense. Add the field,
 * with its type and patch strategy as in the API reference, when a manifest needs it.
 */

export interface SchemaNode {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly format?: string;
  readonly $ref?: string;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly additionalProperties?: SchemaNode;
  readonly items?: SchemaNode;
  readonly required?: readonly string[];
  readonly 'x-kubernetes-patch-strategy'?: string;
  readonly 'x-kubernetes-patch-merge-key'?: string;
  readonly 'x-kubernetes-group-version-kind'?: ReadonlyArray<{ group: string; version: string; kind: string }>;
}

const string: SchemaNode = { type: 'string' };
const byteString: SchemaNode = { type: 'string', format: 'byte' };
const int32: SchemaNode = { type: 'integer', format: 'int32' };
const int64: SchemaNode = { type: 'integer', format: 'int64' };
const boolean: SchemaNode = { type: 'boolean' };
const time: SchemaNode = { type: 'string', format: 'date-time' };
/** `IntOrString` and `Quantity` are strings in the published schema (kubectl accepts numbers for them). */
const intOrString: SchemaNode = { type: 'string', format: 'int-or-string' };
const quantity: SchemaNode = { type: 'string' };
const freeForm: SchemaNode = { type: 'object' };

const ref = (name: string): SchemaNode => ({ $ref: `#/definitions/${name}` });
const object = (properties: Record<string, SchemaNode>, required?: readonly string[]): SchemaNode => ({
  type: 'object',
  properties,
  ...(required === undefined ? {} : { required }),
});
const mapOf = (values: SchemaNode): SchemaNode => ({ type: 'object', additionalProperties: values });
const listOf = (items: SchemaNode): SchemaNode => ({ type: 'array', items });
/** A list merged element by element on `mergeKey` in strategic merge patches. */
const mergedList = (items: SchemaNode, mergeKey: string, strategy = 'merge'): SchemaNode => ({
  type: 'array',
  items,
  'x-kubernetes-patch-strategy': strategy,
  'x-kubernetes-patch-merge-key': mergeKey,
});
/** A list of scalars merged as a set. */
const mergedSet = (items: SchemaNode): SchemaNode => ({ type: 'array', items, 'x-kubernetes-patch-strategy': 'merge' });

const core = (name: string): string => `io.k8s.api.core.v1.${name}`;
const apps = (name: string): string => `io.k8s.api.apps.v1.${name}`;
const rbac = (name: string): string => `io.k8s.api.rbac.v1.${name}`;
const meta = (name: string): string => `io.k8s.apimachinery.pkg.apis.meta.v1.${name}`;

/** A top-level kind: apiVersion, kind, metadata and its own fields. */
function kindDefinition(group: string, version: string, kind: string, properties: Record<string, SchemaNode>, required?: readonly string[]): SchemaNode {
  return {
    ...object({ apiVersion: string, kind: string, metadata: ref(meta('ObjectMeta')), ...properties }, required),
    'x-kubernetes-group-version-kind': [{ group, version, kind }],
  };
}

const labelSelector = ref(meta('LabelSelector'));
const podAffinityTerm = ref(core('PodAffinityTerm'));
const weightedPodAffinityTerm = ref(core('WeightedPodAffinityTerm'));
const podAffinity = object({
  requiredDuringSchedulingIgnoredDuringExecution: listOf(podAffinityTerm),
  preferredDuringSchedulingIgnoredDuringExecution: listOf(weightedPodAffinityTerm),
});

export const definitions: Readonly<Record<string, SchemaNode>> = {
  [meta('ObjectMeta')]: object({
    name: string,
    generateName: string,
    namespace: string,
    uid: string,
    resourceVersion: string,
    generation: int64,
    creationTimestamp: time,
    deletionTimestamp: time,
    deletionGracePeriodSeconds: int64,
    labels: mapOf(string),
    annotations: mapOf(string),
    ownerReferences: mergedList(ref(meta('OwnerReference')), 'uid'),
    finalizers: mergedSet(string),
    managedFields: listOf(freeForm),
  }),
  [meta('OwnerReference')]: object(
    { apiVersion: string, kind: string, name: string, uid: string, controller: boolean, blockOwnerDeletion: boolean },
    ['apiVersion', 'kind', 'name', 'uid'],
  ),
  [meta('LabelSelector')]: object({ matchLabels: mapOf(string), matchExpressions: listOf(ref(meta('LabelSelectorRequirement'))) }),
  [meta('LabelSelectorRequirement')]: object({ key: string, operator: string, values: listOf(string) }, ['key', 'operator']),

  // --- core/v1 ---
  [core('Namespace')]: kindDefinition('', 'v1', 'Namespace', {
    spec: object({ finalizers: listOf(string) }),
    status: object({ phase: string, conditions: listOf(freeForm) }),
  }),
  [core('ServiceAccount')]: kindDefinition('', 'v1', 'ServiceAccount', {
    secrets: mergedList(ref(core('ObjectReference')), 'name'),
    imagePullSecrets: listOf(ref(core('LocalObjectReference'))),
    automountServiceAccountToken: boolean,
  }),
  [core('ObjectReference')]: object({ apiVersion: string, kind: string, name: string, namespace: string, uid: string, resourceVersion: string, fieldPath: string }),
  [core('LocalObjectReference')]: object({ name: string }),
  [core('ConfigMap')]: kindDefinition('', 'v1', 'ConfigMap', { data: mapOf(string), binaryData: mapOf(byteString), immutable: boolean }),
  [core('Secret')]: kindDefinition('', 'v1', 'Secret', { data: mapOf(byteString), stringData: mapOf(string), type: string, immutable: boolean }),

  [core('PodTemplateSpec')]: object({ metadata: ref(meta('ObjectMeta')), spec: ref(core('PodSpec')) }),
  [core('PodSpec')]: object(
    {
      containers: mergedList(ref(core('Container')), 'name'),
      initContainers: mergedList(ref(core('Container')), 'name'),
      volumes: mergedList(ref(core('Volume')), 'name', 'merge,retainKeys'),
      serviceAccountName: string,
      serviceAccount: string,
      automountServiceAccountToken: boolean,
      securityContext: ref(core('PodSecurityContext')),
      affinity: ref(core('Affinity')),
      nodeSelector: mapOf(string),
      tolerations: listOf(ref(core('Toleration'))),
      imagePullSecrets: mergedList(ref(core('LocalObjectReference')), 'name'),
      priorityClassName: string,
      restartPolicy: string,
      terminationGracePeriodSeconds: int64,
      dnsPolicy: string,
      schedulerName: string,
      hostNetwork: boolean,
      enableServiceLinks: boolean,
    },
    ['containers'],
  ),
  [core('PodSecurityContext')]: object({
    runAsNonRoot: boolean,
    runAsUser: int64,
    runAsGroup: int64,
    fsGroup: int64,
    supplementalGroups: listOf(int64),
    seccompProfile: ref(core('SeccompProfile')),
  }),
  [core('SeccompProfile')]: object({ type: string, localhostProfile: string }, ['type']),
  [core('Affinity')]: object({ podAffinity: ref(core('PodAffinity')), podAntiAffinity: ref(core('PodAntiAffinity')) }),
  [core('PodAffinity')]: podAffinity,
  [core('PodAntiAffinity')]: podAffinity,
  [core('PodAffinityTerm')]: object({ labelSelector, namespaceSelector: labelSelector, namespaces: listOf(string), topologyKey: string }, ['topologyKey']),
  [core('WeightedPodAffinityTerm')]: object({ weight: int32, podAffinityTerm }, ['weight', 'podAffinityTerm']),
  [core('Toleration')]: object({ key: string, operator: string, value: string, effect: string, tolerationSeconds: int64 }),
  [core('Container')]: object(
    {
      name: string,
      image: string,
      imagePullPolicy: string,
      command: listOf(string),
      args: listOf(string),
      workingDir: string,
      env: mergedList(ref(core('EnvVar')), 'name'),
      ports: mergedList(ref(core('ContainerPort')), 'containerPort'),
      resources: ref(core('ResourceRequirements')),
      volumeMounts: mergedList(ref(core('VolumeMount')), 'mountPath'),
      livenessProbe: ref(core('Probe')),
      readinessProbe: ref(core('Probe')),
      startupProbe: ref(core('Probe')),
      securityContext: ref(core('SecurityContext')),
      terminationMessagePath: string,
      terminationMessagePolicy: string,
    },
    ['name'],
  ),
  [core('EnvVar')]: object({ name: string, value: string, valueFrom: ref(core('EnvVarSource')) }, ['name']),
  [core('EnvVarSource')]: object({
    fieldRef: object({ apiVersion: string, fieldPath: string }, ['fieldPath']),
    secretKeyRef: object({ name: string, key: string, optional: boolean }, ['key']),
    configMapKeyRef: object({ name: string, key: string, optional: boolean }, ['key']),
  }),
  [core('ContainerPort')]: object({ name: string, containerPort: int32, protocol: string, hostPort: int32, hostIP: string }, ['containerPort']),
  [core('ResourceRequirements')]: object({ limits: mapOf(quantity), requests: mapOf(quantity) }),
  [core('VolumeMount')]: object({ name: string, mountPath: string, readOnly: boolean, subPath: string }, ['name', 'mountPath']),
  [core('Probe')]: object({
    httpGet: object({ path: string, port: intOrString, host: string, scheme: string }, ['port']),
    tcpSocket: object({ port: intOrString, host: string }, ['port']),
    exec: object({ command: listOf(string) }),
    initialDelaySeconds: int32,
    periodSeconds: int32,
    timeoutSeconds: int32,
    successThreshold: int32,
    failureThreshold: int32,
  }),
  [core('SecurityContext')]: object({
    allowPrivilegeEscalation: boolean,
    privileged: boolean,
    readOnlyRootFilesystem: boolean,
    runAsNonRoot: boolean,
    runAsUser: int64,
    runAsGroup: int64,
    capabilities: object({ add: listOf(string), drop: listOf(string) }),
    seccompProfile: ref(core('SeccompProfile')),
  }),
  [core('Volume')]: object(
    {
      name: string,
      configMap: object({ name: string, items: listOf(ref(core('KeyToPath'))), defaultMode: int32, optional: boolean }),
      secret: object({ secretName: string, items: listOf(ref(core('KeyToPath'))), defaultMode: int32, optional: boolean }),
      emptyDir: object({ medium: string, sizeLimit: quantity }),
    },
    ['name'],
  ),
  [core('KeyToPath')]: object({ key: string, path: string, mode: int32 }, ['key', 'path']),

  // --- apps/v1 ---
  [apps('Deployment')]: kindDefinition('apps', 'v1', 'Deployment', { spec: ref(apps('DeploymentSpec')), status: freeForm }),
  [apps('DeploymentSpec')]: object(
    {
      replicas: int32,
      selector: labelSelector,
      template: ref(core('PodTemplateSpec')),
      strategy: { ...ref(apps('DeploymentStrategy')), 'x-kubernetes-patch-strategy': 'retainKeys' },
      minReadySeconds: int32,
      revisionHistoryLimit: int32,
      progressDeadlineSeconds: int32,
      paused: boolean,
    },
    ['selector', 'template'],
  ),
  [apps('DeploymentStrategy')]: object({ type: string, rollingUpdate: object({ maxSurge: intOrString, maxUnavailable: intOrString }) }),

  // --- rbac.authorization.k8s.io/v1 ---
  [rbac('ClusterRole')]: kindDefinition('rbac.authorization.k8s.io', 'v1', 'ClusterRole', {
    rules: listOf(ref(rbac('PolicyRule'))),
    aggregationRule: object({ clusterRoleSelectors: listOf(labelSelector) }),
  }),
  [rbac('Role')]: kindDefinition('rbac.authorization.k8s.io', 'v1', 'Role', { rules: listOf(ref(rbac('PolicyRule'))) }),
  [rbac('PolicyRule')]: object({ apiGroups: listOf(string), resources: listOf(string), resourceNames: listOf(string), verbs: listOf(string), nonResourceURLs: listOf(string) }, ['verbs']),
  [rbac('ClusterRoleBinding')]: kindDefinition('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', { roleRef: ref(rbac('RoleRef')), subjects: listOf(ref(rbac('Subject'))) }, ['roleRef']),
  [rbac('RoleBinding')]: kindDefinition('rbac.authorization.k8s.io', 'v1', 'RoleBinding', { roleRef: ref(rbac('RoleRef')), subjects: listOf(ref(rbac('Subject'))) }, ['roleRef']),
  [rbac('RoleRef')]: object({ apiGroup: string, kind: string, name: string }, ['apiGroup', 'kind', 'name']),
  [rbac('Subject')]: object({ kind: string, apiGroup: string, name: string, namespace: string }, ['kind', 'name']),
};

/** The definition name of a kind, or undefined for kinds without a schema (custom resources). */
export function definitionOf(group: string, version: string, kind: string): string | undefined {
  return Object.entries(definitions).find(([, node]) =>
    (node['x-kubernetes-group-version-kind'] ?? []).some((gvk) => gvk.group === group && gvk.version === version && gvk.kind === kind),
  )?.[0];
}

/** Follows `$ref` to the definition it names. */
export function resolveSchema(node: SchemaNode | undefined): SchemaNode | undefined {
  let current = node;
  for (let depth = 0; current?.$ref !== undefined && depth < 16; depth++) {
    const target = definitions[current.$ref.replace('#/definitions/', '')];
    // A `$ref` beside patch extensions keeps them (DeploymentSpec.strategy).
    current = target === undefined ? undefined : { ...target, ...withoutRef(current) };
  }
  return current;
}

function withoutRef(node: SchemaNode): SchemaNode {
  const { $ref: _ref, ...rest } = node;
  return rest;
}

/**
 * Decodes an object as kube-apiserver decodes a built-in kind into its Go struct: fields the
 * schema does not know are dropped, and named (`spec.replica`) so that a request with
 * `fieldValidation=Strict` — what kubectl ≥ 1.27 sends — can be refused instead.
 */
export function decodeAgainstSchema(value: unknown, node: SchemaNode | undefined, path = ''): { value: unknown; unknownFields: string[] } {
  const schema = resolveSchema(node);
  const unknownFields: string[] = [];
  if (schema === undefined || value === null || typeof value !== 'object') return { value, unknownFields };
  if (Array.isArray(value)) {
    const items = value.map((item, index) => {
      const decoded = decodeAgainstSchema(item, schema.items, `${path}[${index}]`);
      unknownFields.push(...decoded.unknownFields);
      return decoded.value;
    });
    return { value: schema.items === undefined ? value : items, unknownFields };
  }
  if (schema.properties === undefined && schema.additionalProperties === undefined) return { value, unknownFields };
  const result: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
    const fieldPath = path === '' ? key : `${path}.${key}`;
    const fieldSchema = schema.properties?.[key] ?? schema.additionalProperties;
    if (fieldSchema === undefined) {
      unknownFields.push(fieldPath);
      continue;
    }
    const decoded = decodeAgainstSchema(field, fieldSchema, fieldPath);
    unknownFields.push(...decoded.unknownFields);
    result[key] = decoded.value;
  }
  return { value: result, unknownFields };
}
