/**
 * The database schema, as ordered migrations per SQL dialect.
 *
 * Both lists hold the same versions with the same meaning; only the dialect differs
 * (SQLite: STRICT tables, integer milliseconds, 0/1 flags; PostgreSQL: timestamptz,
 * boolean, jsonb, `COLLATE "C"` on keys so that ordering is the same as SQLite's binary
 * order whatever the database locale). A migration is applied once, inside a transaction
 * that also records it in `schema_migrations`; never edit one that has shipped — append a
 * new version instead.
 *
 * Secrets live only in the `*_sealed` columns, as SecretBox envelopes. Tokens and agent
 * secrets keep only their hash. Deleting a user or a cluster cascades through foreign keys;
 * the store also deletes dependent rows explicitly first, to learn which ones to announce
 * as changed (memberships of a User subject have no foreign key: a subject may be a user
 * ID or a group).
 *
 * Tables (version that made them):
 * - users, identities (provider → user links), tokens (hashes), clusters, memberships,
 *   provider_configs, user_groups (1).
 * - clusters.mode (2): `direct` clusters have `credentials_sealed`; `agent` clusters have
 *   none (NULL; a CHECK keeps the two in step) and may have server ''.
 * - agent_secrets (2): an agent's one-time `registration` secret and its long-lived `agent`
 *   credential, hash only, per cluster (cascade).
 * - tunnels (2): which proxy replica holds an agent's tunnel, with the peer URL other
 *   replicas reach it at and the last heartbeat; key (cluster_id, agent_id, replica_id).
 *
 * - clusters.deleting_since (3): set by `DELETE /v1/clusters/:id` while the sync removes
 *   kubegate's objects from the cluster; the row goes once that succeeded.
 * - clusters.sync_holds_objects (3): the sync may have objects in the cluster (set before
 *   its first write there, cleared after a cleanup), so clusters without the authorized
 *   endpoint are contacted only when there is something to remove.
 * - settings (3): small installation-wide values, written once (the installation ID).
 * - sync_epochs (3): the recent sync epochs, one added per proxy start, that the sync
 *   compares with the ownership stamp it keeps in each cluster (sync/ownership.ts).
 * - signing_keys (4): the token issuer's JWT signing keys, one per `generation` (UNIQUE, so
 *   two replicas rotating at once create one key), the private JWK sealed, the public JWK
 *   in clear (text in both dialects: it is served byte for byte).
 *
 * - login_failures (5): the login rate limit's fixed windows (proxy/login-rate-limit.ts),
 *   one row per counter (`username`, `address`, `password-change`) and key (a digest or a
 *   client address), `window_start` in epoch milliseconds in both dialects; shared by every
 *   process and replica on the store. Closed windows are deleted by the next take.
 * - users.email (6): the user's verified e-mail address or NULL, unique ignoring case
 *   among the users that have one (a partial unique index on `lower(email)`; addresses are
 *   ASCII, auth/email.ts, so both dialects lower-case them alike). Existing users get NULL.
 *
 * - leases (7): who runs the background jobs (store/lease.ts): one row per lease, its
 *   holder (a random per-process ID) and when it lapses — by the database's clock on
 *   PostgreSQL (timestamptz), epoch milliseconds on SQLite.
 * - job_reports (7): what the background jobs found (a cluster's probe, its sync's outcome,
 *   a provider's health), one JSON object per job and subject, so that every replica serves
 *   what the lease holder found (store/job-reports.ts). The store deletes a cluster's
 *   reports with the cluster (no foreign key: a subject is a cluster or a provider).
 *
 * SQLite cannot drop a NOT NULL, so version 2 rebuilds `clusters` there (new table, copy,
 * drop, rename): the SQLite runner applies migrations with foreign keys off and checks
 * them (`PRAGMA foreign_key_check`) before it commits, as SQLite's documentation prescribes.
 */

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE users (
  id            TEXT    NOT NULL PRIMARY KEY,
  username      TEXT    NOT NULL,
  display_name  TEXT    NOT NULL,
  global_role   TEXT    NOT NULL CHECK (global_role IN ('admin', 'user')),
  enabled       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  password_hash TEXT,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  CONSTRAINT users_username_unique UNIQUE (username)
) STRICT;

CREATE TABLE identities (
  provider         TEXT    NOT NULL,
  provider_user_id TEXT    NOT NULL,
  user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  login_name       TEXT    NOT NULL,
  created_at       INTEGER NOT NULL,
  PRIMARY KEY (provider, provider_user_id)
) STRICT;
CREATE INDEX identities_user_id ON identities (user_id);

CREATE TABLE clusters (
  id                       TEXT    NOT NULL PRIMARY KEY,
  display_name             TEXT    NOT NULL,
  server                   TEXT    NOT NULL,
  ca_pem                   TEXT,
  credentials_sealed       TEXT    NOT NULL,
  insecure_skip_tls_verify INTEGER NOT NULL CHECK (insecure_skip_tls_verify IN (0, 1)),
  ace                      TEXT    NOT NULL CHECK (json_valid(ace)),
  created_at               INTEGER NOT NULL,
  updated_at               INTEGER NOT NULL
) STRICT;

CREATE TABLE tokens (
  name         TEXT    NOT NULL PRIMARY KEY,
  token_hash   TEXT    NOT NULL,
  user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind         TEXT    NOT NULL CHECK (kind IN ('login', 'api', 'kubeconfig')),
  provider     TEXT    NOT NULL,
  cluster_id   TEXT    REFERENCES clusters (id) ON DELETE CASCADE,
  description  TEXT    NOT NULL,
  expires_at   INTEGER,
  last_used_at INTEGER,
  created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX tokens_user_id ON tokens (user_id);
CREATE INDEX tokens_cluster_id ON tokens (cluster_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE memberships (
  cluster_id   TEXT    NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
  subject_kind TEXT    NOT NULL CHECK (subject_kind IN ('User', 'Group')),
  subject_name TEXT    NOT NULL,
  role         TEXT    NOT NULL CHECK (role IN ('owner', 'member', 'viewer')),
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (cluster_id, subject_kind, subject_name)
) STRICT;
CREATE INDEX memberships_subject ON memberships (subject_kind, subject_name);

CREATE TABLE provider_configs (
  name            TEXT    NOT NULL PRIMARY KEY,
  type            TEXT    NOT NULL,
  enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  settings_sealed TEXT    NOT NULL,
  updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE user_groups (
  user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  provider     TEXT    NOT NULL,
  group_names  TEXT    NOT NULL CHECK (json_valid(group_names)),
  refreshed_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, provider)
) STRICT;
`,
  },
  {
    version: 2,
    name: 'cluster agents',
    sql: `
CREATE TABLE clusters_new (
  id                       TEXT    NOT NULL PRIMARY KEY,
  display_name             TEXT    NOT NULL,
  server                   TEXT    NOT NULL,
  ca_pem                   TEXT,
  credentials_sealed       TEXT,
  insecure_skip_tls_verify INTEGER NOT NULL CHECK (insecure_skip_tls_verify IN (0, 1)),
  ace                      TEXT    NOT NULL CHECK (json_valid(ace)),
  created_at               INTEGER NOT NULL,
  updated_at               INTEGER NOT NULL,
  mode                     TEXT    NOT NULL CHECK (mode IN ('direct', 'agent')),
  CONSTRAINT clusters_credentials_by_mode CHECK ((mode = 'direct') = (credentials_sealed IS NOT NULL))
) STRICT;
INSERT INTO clusters_new (id, display_name, server, ca_pem, credentials_sealed, insecure_skip_tls_verify, ace, created_at, updated_at, mode)
  SELECT id, display_name, server, ca_pem, credentials_sealed, insecure_skip_tls_verify, ace, created_at, updated_at, 'direct' FROM clusters;
DROP TABLE clusters;
ALTER TABLE clusters_new RENAME TO clusters;

CREATE TABLE agent_secrets (
  name         TEXT    NOT NULL PRIMARY KEY,
  kind         TEXT    NOT NULL CHECK (kind IN ('registration', 'agent')),
  cluster_id   TEXT    NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
  secret_hash  TEXT    NOT NULL,
  description  TEXT    NOT NULL,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER,
  last_used_at INTEGER
) STRICT;
CREATE INDEX agent_secrets_cluster_id ON agent_secrets (cluster_id);

CREATE TABLE tunnels (
  cluster_id         TEXT    NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
  agent_id           TEXT    NOT NULL,
  replica_id         TEXT    NOT NULL,
  peer_url           TEXT    NOT NULL,
  agent_version      TEXT    NOT NULL,
  kubernetes_version TEXT    NOT NULL,
  connected_at       INTEGER NOT NULL,
  heartbeat_at       INTEGER NOT NULL,
  PRIMARY KEY (cluster_id, agent_id, replica_id)
) STRICT;
CREATE INDEX tunnels_replica_id ON tunnels (replica_id);
CREATE INDEX tunnels_heartbeat_at ON tunnels (heartbeat_at);
`,
  },
  {
    version: 3,
    name: 'cluster deletion, installation settings, sync epochs',
    sql: `
ALTER TABLE clusters ADD COLUMN deleting_since INTEGER;
ALTER TABLE clusters ADD COLUMN sync_holds_objects INTEGER NOT NULL DEFAULT 0 CHECK (sync_holds_objects IN (0, 1));

CREATE TABLE settings (
  key   TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE sync_epochs (
  epoch      TEXT    NOT NULL PRIMARY KEY,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sync_epochs_created_at ON sync_epochs (created_at);
`,
  },
  {
    version: 4,
    name: 'issuer signing keys',
    sql: `
CREATE TABLE signing_keys (
  kid                TEXT    NOT NULL PRIMARY KEY,
  generation         INTEGER NOT NULL,
  algorithm          TEXT    NOT NULL,
  public_jwk         TEXT    NOT NULL CHECK (json_valid(public_jwk)),
  private_jwk_sealed TEXT    NOT NULL,
  created_at         INTEGER NOT NULL,
  CONSTRAINT signing_keys_generation_unique UNIQUE (generation)
) STRICT;
`,
  },
  {
    version: 5,
    name: 'login failure counters',
    sql: `
CREATE TABLE login_failures (
  counter      TEXT    NOT NULL,
  key          TEXT    NOT NULL,
  window_start INTEGER NOT NULL,
  places       INTEGER NOT NULL CHECK (places >= 0),
  refused      INTEGER NOT NULL CHECK (refused IN (0, 1)),
  PRIMARY KEY (counter, key)
) STRICT;
CREATE INDEX login_failures_window_start ON login_failures (counter, window_start);
`,
  },
  {
    version: 6,
    name: 'user e-mail addresses',
    sql: `
ALTER TABLE users ADD COLUMN email TEXT;
CREATE UNIQUE INDEX users_email_unique ON users (lower(email)) WHERE email IS NOT NULL;
`,
  },
  {
    version: 7,
    name: 'background job lease and reports',
    sql: `
CREATE TABLE leases (
  name       TEXT    NOT NULL PRIMARY KEY,
  holder     TEXT    NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE job_reports (
  job     TEXT NOT NULL CHECK (job IN ('cluster-probe', 'cluster-sync', 'provider-health')),
  subject TEXT NOT NULL,
  report  TEXT NOT NULL CHECK (json_valid(report)),
  PRIMARY KEY (job, subject)
) STRICT;
`,
  },
];

export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE users (
  id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  username      TEXT COLLATE "C" NOT NULL,
  display_name  TEXT        NOT NULL,
  global_role   TEXT        NOT NULL CHECK (global_role IN ('admin', 'user')),
  enabled       BOOLEAN     NOT NULL,
  password_hash TEXT,
  created_at    TIMESTAMPTZ NOT NULL,
  updated_at    TIMESTAMPTZ NOT NULL,
  CONSTRAINT users_username_unique UNIQUE (username)
);

CREATE TABLE identities (
  provider         TEXT COLLATE "C" NOT NULL,
  provider_user_id TEXT COLLATE "C" NOT NULL,
  user_id          TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  login_name       TEXT        NOT NULL,
  created_at       TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (provider, provider_user_id)
);
CREATE INDEX identities_user_id ON identities (user_id);

CREATE TABLE clusters (
  id                       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  display_name             TEXT        NOT NULL,
  server                   TEXT        NOT NULL,
  ca_pem                   TEXT,
  credentials_sealed       TEXT        NOT NULL,
  insecure_skip_tls_verify BOOLEAN     NOT NULL,
  ace                      JSONB       NOT NULL,
  created_at               TIMESTAMPTZ NOT NULL,
  updated_at               TIMESTAMPTZ NOT NULL
);

CREATE TABLE tokens (
  name         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  token_hash   TEXT        NOT NULL,
  user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind         TEXT        NOT NULL CHECK (kind IN ('login', 'api', 'kubeconfig')),
  provider     TEXT COLLATE "C" NOT NULL,
  cluster_id   TEXT COLLATE "C" REFERENCES clusters (id) ON DELETE CASCADE,
  description  TEXT        NOT NULL,
  expires_at   TIMESTAMPTZ,
  last_used_at TIMESTAMPTZ,
  created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX tokens_user_id ON tokens (user_id);
CREATE INDEX tokens_cluster_id ON tokens (cluster_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE memberships (
  cluster_id   TEXT COLLATE "C" NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
  subject_kind TEXT COLLATE "C" NOT NULL CHECK (subject_kind IN ('User', 'Group')),
  subject_name TEXT COLLATE "C" NOT NULL,
  role         TEXT        NOT NULL CHECK (role IN ('owner', 'member', 'viewer')),
  created_at   TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (cluster_id, subject_kind, subject_name)
);
CREATE INDEX memberships_subject ON memberships (subject_kind, subject_name);

CREATE TABLE provider_configs (
  name            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  type            TEXT        NOT NULL,
  enabled         BOOLEAN     NOT NULL,
  settings_sealed TEXT        NOT NULL,
  updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE user_groups (
  user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  provider     TEXT COLLATE "C" NOT NULL,
  group_names  JSONB       NOT NULL,
  refreshed_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (user_id, provider)
);
`,
  },
  {
    version: 2,
    name: 'cluster agents',
    sql: `
ALTER TABLE clusters ALTER COLUMN credentials_sealed DROP NOT NULL;
ALTER TABLE clusters ADD COLUMN mode TEXT NOT NULL DEFAULT 'direct' CHECK (mode IN ('direct', 'agent'));
ALTER TABLE clusters ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE clusters ADD CONSTRAINT clusters_credentials_by_mode CHECK ((mode = 'direct') = (credentials_sealed IS NOT NULL));

CREATE TABLE agent_secrets (
  name         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  kind         TEXT        NOT NULL CHECK (kind IN ('registration', 'agent')),
  cluster_id   TEXT COLLATE "C" NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
  secret_hash  TEXT        NOT NULL,
  description  TEXT        NOT NULL,
  created_at   TIMESTAMPTZ NOT NULL,
  expires_at   TIMESTAMPTZ,
  last_used_at TIMESTAMPTZ
);
CREATE INDEX agent_secrets_cluster_id ON agent_secrets (cluster_id);

CREATE TABLE tunnels (
  cluster_id         TEXT COLLATE "C" NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
  agent_id           TEXT COLLATE "C" NOT NULL,
  replica_id         TEXT COLLATE "C" NOT NULL,
  peer_url           TEXT        NOT NULL,
  agent_version      TEXT        NOT NULL,
  kubernetes_version TEXT        NOT NULL,
  connected_at       TIMESTAMPTZ NOT NULL,
  heartbeat_at       TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (cluster_id, agent_id, replica_id)
);
CREATE INDEX tunnels_replica_id ON tunnels (replica_id);
CREATE INDEX tunnels_heartbeat_at ON tunnels (heartbeat_at);
`,
  },
  {
    version: 3,
    name: 'cluster deletion, installation settings, sync epochs',
    sql: `
ALTER TABLE clusters ADD COLUMN deleting_since TIMESTAMPTZ;
ALTER TABLE clusters ADD COLUMN sync_holds_objects BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE settings (
  key   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE sync_epochs (
  epoch      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sync_epochs_created_at ON sync_epochs (created_at);
`,
  },
  {
    version: 4,
    name: 'issuer signing keys',
    sql: `
CREATE TABLE signing_keys (
  kid                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  generation         INTEGER     NOT NULL,
  algorithm          TEXT        NOT NULL,
  public_jwk         TEXT        NOT NULL,
  private_jwk_sealed TEXT        NOT NULL,
  created_at         TIMESTAMPTZ NOT NULL,
  CONSTRAINT signing_keys_generation_unique UNIQUE (generation)
);
`,
  },
  {
    version: 5,
    name: 'login failure counters',
    sql: `
CREATE TABLE login_failures (
  counter      TEXT COLLATE "C" NOT NULL,
  key          TEXT COLLATE "C" NOT NULL,
  window_start BIGINT  NOT NULL,
  places       INTEGER NOT NULL CHECK (places >= 0),
  refused      BOOLEAN NOT NULL,
  PRIMARY KEY (counter, key)
);
CREATE INDEX login_failures_window_start ON login_failures (counter, window_start);
`,
  },
  {
    version: 6,
    name: 'user e-mail addresses',
    sql: `
ALTER TABLE users ADD COLUMN email TEXT COLLATE "C";
CREATE UNIQUE INDEX users_email_unique ON users (lower(email)) WHERE email IS NOT NULL;
`,
  },
  {
    version: 7,
    name: 'background job lease and reports',
    sql: `
CREATE TABLE leases (
  name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  holder     TEXT        NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE job_reports (
  job     TEXT COLLATE "C" NOT NULL CHECK (job IN ('cluster-probe', 'cluster-sync', 'provider-health')),
  subject TEXT COLLATE "C" NOT NULL,
  report  JSONB NOT NULL,
  PRIMARY KEY (job, subject)
);
`,
  },
];
