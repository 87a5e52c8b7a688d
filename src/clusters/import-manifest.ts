/**
 * The manifest that attaches a cluster to the proxy in one `kubectl apply`: everything the
 * agent needs in the downstream cluster, and no more.
 *
 * Design note (least privilege). The agent's ServiceAccount may only impersonate, create
 * SubjectAccessReviews (the proxy asks the cluster whether a user may `kubectl --as`; a
 * review reads no object and changes nothing) — the same rules deploy/proxy/downstream-rbac.yaml
 * gives a directly registered proxy identity — and read and patch its own credential Secret,
 * by name. The sync's writes are granted to the
 * user `kubegate:sync`, which exists only through impersonation, so the agent's own identity
 * — the token the proxy uses through the tunnel — keeps nothing but `impersonate`: a request
 * whose impersonation headers were ever lost would run as an identity that can do next to
 * nothing. The proxy's CA travels in a ConfigMap (it is public); the one-time registration
 * token in the Secret the agent later overwrites with its own credential. deploy/agent/ is
 * the same set of objects as a kustomization, and a test keeps the two in step.
 *
 * The objects are labelled `app.kubernetes.io/part-of: kubegate`, never
 * `app.kubernetes.io/managed-by: kubegate`: that label marks what the sync owns, and the sync
 * deletes every ClusterRoleBinding carrying it that no membership asks for — the agent's own
 * impersonation binding among them, were it labelled so.
 */
import { stringify } from 'yaml';

export const AGENT_NAMESPACE = 'kubegate-system';
export const AGENT_NAME = 'kubegate-agent';
export const AGENT_SECRET = 'kubegate-agent';
export const AGENT_CA_CONFIGMAP = 'kubegate-agent-proxy-ca';
export const AGENT_HEALTH_PORT = 8081;
/**
 * The agent's metrics listener in the pod: loopback, so nothing outside the pod scrapes it
 * anonymously (set a metrics bearer token file, or a pod-IP address behind a NetworkPolicy,
 * to scrape from Prometheus).
 */
export const AGENT_METRICS_LISTEN = '127.0.0.1:9464';

/** The user the proxy's sync writes as (through impersonation), and the roles memberships bind. */
export const SYNC_USER = 'kubegate:sync';

export interface ImportManifestOptions {
  readonly clusterId: string;
  /** `https://…` the agent dials. */
  readonly proxyUrl: string;
  /** PEM CA of the proxy's certificate; null when it is publicly trusted. */
  readonly proxyCaPem: string | null;
  /** `name:secret` of the one-time registration token. */
  readonly registrationToken: string;
  readonly image: string;
  /** Namespace of the sync's ownership stamp and, with ACE, the authorized endpoint's objects. */
  readonly syncNamespace: string;
  /** The authorized endpoint is on: the sync may write tokens and user attributes too. */
  readonly ace: boolean;
  /** ClusterRoles memberships bind (the sync needs `bind` on them). */
  readonly roleNames: readonly string[];
  readonly replicas?: number;
}

type KubeManifestObject = Record<string, unknown>;

const IMPERSONATE_RULES = [
  { apiGroups: [''], resources: ['users', 'groups', 'serviceaccounts'], verbs: ['impersonate'] },
  {
    apiGroups: ['authentication.k8s.io'],
    resources: ['userextras/kubegate.io/login-name', 'userextras/kubegate.io/provider', 'userextras/kubegate.io/token-name', 'uids'],
    verbs: ['impersonate'],
  },
  // `kubectl --as` through the proxy: may this user impersonate that identity here?
  { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
];

/** The objects, in apply order. */
export function importManifestObjects(options: ImportManifestOptions): KubeManifestObject[] {
  const labels = { 'app.kubernetes.io/name': AGENT_NAME, 'app.kubernetes.io/part-of': 'kubegate', 'kubegate.io/cluster': options.clusterId };
  const meta = (name: string, namespaced = true): Record<string, unknown> => ({ name, ...(namespaced ? { namespace: AGENT_NAMESPACE } : {}), labels });
  const objects: KubeManifestObject[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: meta(AGENT_NAMESPACE, false) },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(AGENT_NAME) },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta('kubegate-agent-impersonator', false), rules: IMPERSONATE_RULES },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: meta('kubegate-agent-impersonator', false),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kubegate-agent-impersonator' },
      subjects: [{ kind: 'ServiceAccount', name: AGENT_NAME, namespace: AGENT_NAMESPACE }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: meta('kubegate-agent-credential'),
      rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: [AGENT_SECRET], verbs: ['get', 'patch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta('kubegate-agent-credential'),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kubegate-agent-credential' },
      subjects: [{ kind: 'ServiceAccount', name: AGENT_NAME, namespace: AGENT_NAMESPACE }],
    },
    ...syncObjects(options, meta),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(AGENT_CA_CONFIGMAP),
      data: { 'ca.pem': options.proxyCaPem ?? '' },
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta(AGENT_SECRET),
      type: 'Opaque',
      stringData: { 'registration-token': options.registrationToken },
    },
    deployment(options, meta(AGENT_NAME), labels),
  ];
  return objects;
}

/** The manifest as one multi-document YAML text. */
export function renderImportManifest(options: ImportManifestOptions): string {
  const header = `# kubegate agent for cluster ${options.clusterId}: apply once in that cluster.\n# Contains a one-time registration token: do not share or commit this file.\n`;
  return header + importManifestObjects(options).map((object) => `---\n${stringify(object, { lineWidth: 0 })}`).join('');
}

function syncObjects(options: ImportManifestOptions, meta: (name: string, namespaced?: boolean) => Record<string, unknown>): KubeManifestObject[] {
  const user = [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: SYNC_USER }];
  const objects: KubeManifestObject[] = [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: meta('kubegate-sync-role-bindings', false),
      rules: [
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'], verbs: ['get', 'list', 'create', 'patch', 'delete'] },
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['bind'], resourceNames: [...options.roleNames] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: meta('kubegate-sync-role-bindings', false),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kubegate-sync-role-bindings' },
      subjects: user,
    },
  ];
  const namespaced = (name: string): Record<string, unknown> => ({ ...meta(name, false), namespace: options.syncNamespace });
  const role = (name: string, rules: readonly Record<string, unknown>[]): KubeManifestObject[] => [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: namespaced(name), rules },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: namespaced(name), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: user },
  ];
  return [
    ...objects,
    // Every cluster: the ownership stamp (which copy of which installation writes here).
    { apiVersion: 'v1', kind: 'Namespace', metadata: meta(options.syncNamespace, false) },
    ...role('kubegate-sync-owner', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update', 'delete'] }]),
    ...(options.ace
      ? role('kubegate-sync', [
          { apiGroups: ['cluster.cattle.io'], resources: ['clusterauthtokens', 'clusteruserattributes'], verbs: ['get', 'list', 'create', 'patch', 'delete'] },
          { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'create', 'patch', 'delete'] },
        ])
      : []),
  ];
}

function deployment(options: ImportManifestOptions, metadata: Record<string, unknown>, labels: Record<string, string>): KubeManifestObject {
  const selector = { 'app.kubernetes.io/name': AGENT_NAME };
  const fieldRef = (fieldPath: string): Record<string, unknown> => ({ valueFrom: { fieldRef: { fieldPath } } });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata,
    spec: {
      replicas: options.replicas ?? 2,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: AGENT_NAME,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          // Replicas on different nodes, so one node going down leaves a tunnel up.
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } },
              ],
            },
          },
          containers: [
            {
              name: 'agent',
              image: options.image,
              args: ['agent'],
              env: [
                { name: 'KUBEGATE_PROXY_URL', value: options.proxyUrl },
                { name: 'KUBEGATE_CLUSTER_ID', value: options.clusterId },
                ...(options.proxyCaPem === null ? [] : [{ name: 'KUBEGATE_PROXY_CA_FILE', value: '/etc/kubegate/proxy-ca/ca.pem' }]),
                { name: 'KUBEGATE_CREDENTIAL_SECRET', value: AGENT_SECRET },
                { name: 'KUBEGATE_METRICS_LISTEN', value: AGENT_METRICS_LISTEN },
                { name: 'POD_NAME', ...fieldRef('metadata.name') },
                { name: 'POD_NAMESPACE', ...fieldRef('metadata.namespace') },
              ],
              ports: [{ name: 'health', containerPort: AGENT_HEALTH_PORT }],
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              readinessProbe: { httpGet: { path: '/readyz', port: 'health' }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'health' }, periodSeconds: 10 },
              resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              volumeMounts: [{ name: 'proxy-ca', mountPath: '/etc/kubegate/proxy-ca', readOnly: true }],
            },
          ],
          volumes: [{ name: 'proxy-ca', configMap: { name: AGENT_CA_CONFIGMAP } }],
        },
      },
    },
  };
}
