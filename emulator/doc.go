// Package emulator is a stateful local Databricks for Cohort: an http.Handler that
// speaks the REST endpoints Cohort uses, faithfully enough that the real
// databricks-sdk-go (v0.175.0) works against it unchanged over plain http (PAT auth).
// It is as strict as a real Azure workspace by default; flags relax it for
// rehearsals (see "Strict by default").
// Behaviour follows docs/databricks-api.md and docs/real-workspace.md; points
// marked [Est] there are configurable or documented below.
//
// # Running
//
//	go run ./emulator/cmd/databricks-emulator --listen 127.0.0.1:8765 --state .tmp/emu.jsonl
//
// Flags: --listen ADDR (default 127.0.0.1:8765; port 0 picks one), --token T (admin
// PAT, default dapi-emulator-admin), --user-token T (non-admin PAT, default
// dapi-emulator-user, "" disables), --account-id, --workspace-id, --state FILE,
// --latency none|realistic, --rate-limits none|azure, --limit CLASS=RPS or
// CLASS.burst=N (repeatable), --faults P, --seed N, --time-scale X,
// --assignment-lag D, --cluster-start-delay D, --cluster-stop-delay D, --event-retention D,
// --write-config FILE (YAML fragment with account_host, account_id, workspace_host,
// workspace_id; never the token), -v (log every request). It prints host, account
// id, workspace id and token, then "listening on http://ADDR"; SIGINT/SIGTERM shut
// it down gracefully and compact the journal.
//
// Point the SDK at it with DATABRICKS_HOST=http://ADDR (the scheme is required),
// DATABRICKS_TOKEN, DATABRICKS_ACCOUNT_ID; one host serves both the account and the
// workspace client. curl: curl -H "Authorization: Bearer $TOKEN" http://ADDR/api/2.1/clusters/list
//
// # Endpoints (stable keys used in stats and faults)
//
// Account (/api/2.0/accounts/{account_id}/...): scim.users.create/list/get/delete/
// patch (scim/v2/Users), assignments.put/delete (workspaces/{ws}/permissionassignments/
// principals/{id}), assignments.list, assignments.permissions. Workspace: catalogs.get/
// list/create, schemas.create/get/list/delete, grants.get/update, grants.effective
// (effective-permissions/{catalog|schema}/{name}, ?principal= adds what the
// principal's built-in groups hold), metastores.summary (metastore_summary:
// storage_root only with --metastore-root) (/api/2.1/unity-catalog/...), clusters.create/get/list/delete/permanent_delete/start/edit/pin/unpin/
// spark_versions/list_node_types/events (/api/2.1/clusters/..., /api/2.0 also
// accepted; events: see "Cluster events"), policies.list/get,
// policy_families.get, permissions.get/update (PATCH)/set (PUT)/levels
// (/api/2.0/permissions/clusters/{id}), scim.me (/api/2.0/preview/scim/v2/Me, with the
// X-Databricks-Org-Id header), wellknown (/.well-known/databricks-config, no auth,
// answered with account_id, workspace_id, cloud azure, host_type workspace).
// Workspace calls may carry X-Databricks-Workspace-Id (SDK v0.140+) or
// X-Databricks-Org-Id; one naming another workspace gets 400
// INVALID_PARAMETER_VALUE. Unknown paths or methods: 404 ENDPOINT_NOT_FOUND; malformed JSON: 400
// MALFORMED_REQUEST; panics: 500 INTERNAL_ERROR JSON. No token: 401 UNAUTHENTICATED;
// the user token or a minted participant token gets 403 PERMISSION_DENIED on admin
// APIs (all account APIs, catalog/schema create and delete, grants update, cluster
// create and permanent delete); cluster start/terminate need CAN_RESTART or
// CAN_MANAGE, permission changes need CAN_MANAGE (the single-user binding grants
// nothing).
//
// # Control API (admin token, never counted with Databricks endpoints)
//
//	GET  /emulator/v1/stats         requests per endpoint and status ("0" = dropped connection), split into
//	                                writes (mutating endpoints and unknown.write, whatever the answer) and reads;
//	                                throttled, faults, objects (Schemas leaves out default and information_schema)
//	POST /emulator/v1/stats/reset
//	GET  /emulator/v1/config        rate classes (rps, burst, endpoints), per-endpoint latency ms at scale 1, cluster delays, scale, seed
//	PUT  /emulator/v1/rules         {"refuse_users":["regexp"]}: matching SCIM creates get a permanent SCIM 400; [] clears
//	POST /emulator/v1/faults        {"endpoint":"clusters.create","mode":"applied_then_503|applied_then_reset|503|500|reset|429","count":1}
//	GET  /emulator/v1/faults        queued one-shot faults
//	POST /emulator/v1/tokens        {"user_name":"a@b.c"} -> {"token":"..."}: a non-admin PAT acting as that user
//	POST /emulator/v1/users         {"user_name","email","display_name","inactive","assigned"} -> {"id",...}: a user
//	                                that existed before the event (userName may differ from email; inactive)
//	POST /emulator/v1/tables        {"schema":"cat.sch","name":"t"}: a table, so the schema is not empty
//	POST /emulator/v1/clusters/keep-running {"cluster_id":"..."}: a PENDING cluster (just started) is RUNNING
//	                                now, a RUNNING one stays so: no auto-termination until someone terminates
//	                                it (a notebook in use); TERMINATING/TERMINATED: 400 INVALID_STATE, start it first
//	POST /emulator/v1/clusters/busy {"cluster_id":"...","duration":"2h"}: a participant works on the cluster
//	                                for that long (emulated time, before scaling) from now; it auto-terminates
//	                                autotermination_minutes after the later of RUNNING and the busy end
//	                                (TERMINATING, reason INACTIVITY). PENDING or RUNNING only; repeating it
//	                                extends, never shortens; a terminate ends it. Answers {"cluster_id",
//	                                "state","busy_until","keep_running","auto_terminates_at"} (unix ms)
//	GET  /emulator/v1/clusters/runs {"time_scale","clusters":[{"cluster_id","cluster_name","single_user_name",
//	                                "state","runs","ran_seconds","last_running_at","gone_at"}]}: the emulator's own
//	                                account of how long each cluster was RUNNING (emulated seconds; a run ends at
//	                                TERMINATING, an edit's restart or its removal), purged and permanently
//	                                deleted clusters included (state GONE): a ground truth for usage reads
//
// A participant acts with their own identity through a token minted by POST
// /emulator/v1/tokens: clusters/start and clusters/delete with it need
// CAN_RESTART (or CAN_MANAGE) on the cluster, else 403 PERMISSION_DENIED;
// CAN_ATTACH_TO is not enough.
//
// # Cluster events
//
// POST /api/2.1/clusters/events (docs/databricks-api.md §1.6.1) answers each
// cluster's event log, recorded by the state machine at the instant of each
// transition (not when it is observed): CREATING (user, attributes,
// cluster_size), STARTING (user), RUNNING (current/target_num_workers) and
// DRIVER_HEALTHY at the end of each start delay, EDITED (attributes,
// previous_attributes) and for a RUNNING cluster RESTARTING, TERMINATING
// (details.reason as termination_reason: USER_REQUEST with details.user, or
// INACTIVITY), PINNED, UNPINNED. There is no TERMINATED event (the API has
// none); terminated_time in clusters/get is the end of TERMINATING.
// Timestamps are the emulator's clock: with --time-scale X the time between
// two events is the emulated duration divided by X.
// Paging: limit (default 50, > 500 is 400 INVALID_PARAMETER_VALUE) and offset
// answered with total_count and next_page (absent on the last page; it
// carries end_time, frozen at the first page's now for DESC, which needs it
// with an offset), or page_size/page_token answered with
// next_page_token/prev_page_token. Events older than --event-retention (720h
// [Est], scaled; 0 on the command line keeps them) are dropped; a
// permanently deleted cluster answers 400 INVALID_PARAMETER_VALUE "Cluster X
// does not exist", a purged one 400 INVALID_STATE as clusters/get does.
// Reading a log needs CAN_ATTACH_TO or more [Est]. Rate class
// cluster_events, 30/s [Est].
//
// # State
//
// With StatePath, every answered mutation is appended (not fsynced) to a JSON-lines
// journal before the answer is written, so kill -9 loses nothing answered; a torn
// last line is ignored. The journal is compacted to one record per object on load
// and on Close. Cluster transitions are stored as absolute deadlines, so a restarted
// emulator continues each state machine where it was.
//
// # Strict by default
//
// Each rule is a flag and an Options field. In Options, 0 is the production
// default and a negative value switches a rule off; on the command line 0
// switches a share or cap off too.
//
//   - --metastore-root URL (Options.MetastoreRoot, default ""): no metastore
//     storage, so catalogs/create without storage_root gets 400 INVALID_STATE
//     "Metastore storage root URL does not exist. Please provide a storage
//     location for the catalog (...)". With a root, a catalog gets
//     <root>/__unitystorage/catalogs/<uuid>. Every new catalog holds default and
//     information_schema (which cannot be deleted). --workspace-name (default
//     cohort-emulator) names the seeded workspace catalog (cohort_emulator; the
//     users group has USE_CATALOG and may create in its default schema).
//     --catalog NAME (repeatable, Options.Catalogs) adds catalogs an admin made
//     beforehand; there is no "main" otherwise.
//   - --max-account-users N (default 10000, users and service principals) and
//     --max-schemas-per-catalog N (default 10000, default and
//     information_schema included). Past them [Est]: users 400 SCIM body
//     "Cannot create user U: account A has reached its limit of N users and
//     service principals. ..." (SDK: SCIM_400, ErrBadRequest); schemas 400
//     QUOTA_EXCEEDED "Cannot create schema 'c.s': catalog 'c' has reached its
//     limit of N schemas." Both configurable with --user-quota-error and
//     --schema-quota-error STATUS:CODE:MESSAGE ({limit}, {account}, {user},
//     {catalog}, {schema}; an empty CODE gives a SCIM body for users).
//   - --cluster-retention D (default 720h, scaled): a TERMINATED cluster that is
//     not pinned is permanently deleted D after its termination or last unpin;
//     then clusters/get answers 400 INVALID_STATE "Cannot access cluster X that
//     was terminated or unpinned more than 30 days ago." (not the SDK's
//     ErrResourceDoesNotExist) and it is no longer listed. clusters/pin and
//     /unpin (admin; idempotent): at most --max-pinned-clusters (100) pinned,
//     the next gets 400 QUOTA_EXCEEDED "Cannot pin cluster X: the workspace
//     already has 100 pinned clusters, ..." [Est]. permanent-delete of a pinned
//     cluster: 400 INVALID_STATE "Cannot delete pinned cluster X. Unpin it
//     first."; afterwards get is 400 INVALID_PARAMETER_VALUE "Cluster X does
//     not exist" and permissions 404.
//   - Personal Compute is Azure's personal-vm: data_security_mode allowlist
//     SINGLE_USER, LEGACY_SINGLE_USER, LEGACY_SINGLE_USER_STANDARD (default
//     SINGLE_USER; DATA_SECURITY_MODE_DEDICATED is refused), num_workers fixed
//     0, the singleNode profile fixed, cluster_type fixed all-purpose, pools
//     forbidden, node_type_id allowlist, autotermination unlimited with default
//     4320. --policy-overrides FILE merges a JSON object of rules into it (or
//     {"policy_family_definition_overrides": ..., "max_clusters_per_user": N});
//     the policy then shows the merged definition and the overrides.
//     --max-clusters-per-user N counts the creator's clusters under the policy
//     [Est] and refuses the next with 400 INVALID_PARAMETER_VALUE. Create and
//     edit enforce it: "Validation failed for <rule>, the value must be <v> (is
//     <w>)", "... must be one of [...]", "... must not be present", "... must be
//     present"; apply_policy_default_values fills defaults, fixed values are
//     always filled. clusters/edit works on RUNNING (restarts) and TERMINATED
//     clusters, else 400 INVALID_STATE.
//   - Runtimes as listed today: newest keys without a minor version
//     (18.x-scala2.13, 18.x-cpu-ml-scala2.13 "18 LTS ML ..."), 17.3/16.4/15.4
//     LTS, 19.x Beta; SelectSparkVersion{ML, LongTermSupport, Latest} picks
//     18.x-cpu-ml-scala2.13 (16.4.x-cpu-ml-scala2.12 with Scala 2.12).
//   - SCIM: a create conflicts on the email as well as the userName, also with
//     inactive users: 409 SCIM "User with email X already exists in this
//     account. Note: emails are case insensitive (...)". PATCH
//     /scim/v2/Users/{id} takes a PatchOp (schemas must list
//     urn:ietf:params:scim:api:messages:2.0:PatchOp, else 400 invalidSyntax)
//     with add/replace/remove on active, displayName, userName, emails,
//     externalId, name.*, or a replace without path; it is paced as scim_patch
//     (2/s with --rate-limits azure). Options.Users and POST /emulator/v1/users
//     seed pre-existing (Entra-synced, inactive) users. An inactive user cannot
//     be a cluster's single_user_name.
//   - --assignment-flaky-share F (default 0.1 [Est]: TF#5367 saw about half
//     of the runs, each assigning several users, fail once): within
//     --assignment-flaky-window (20s, scaled) of a user's creation, that share
//     of its assignment PUTs fail with 404 RESOURCE_DOES_NOT_EXIST "Principal
//     <id> not in workspace <ws>" (--assignment-flaky-error); a
//     --assignment-error-body-share (0.2) of those answer 200 with that text in
//     "error", empty permissions, and are not applied (TF#2739).
//   - --int64-as-string-share F (default 0.1 [Est], SDK#1808): in that share
//     of answers principal_id, start_time, terminated_time,
//     last_restarted_time, created_at and updated_at are JSON strings.
//   - Grants PATCH honours omit_permissions_in_response (answers {}); remove
//     revokes, also from an account user no longer assigned to the workspace
//     (UC principals are account-level; adding still needs the assignment). Schema DELETE of a schema with tables needs force=true, else 400
//     SCHEMA_NOT_EMPTY.
//
// # Estimates and choices ([Est])
//
//   - Latency "realistic": triangular per endpoint (min/typical/max ms, see
//     GET /emulator/v1/config), e.g. SCIM 300/500/1000, assignment PUT 500/1000/3000,
//     clusters/create 500/1000/2000; PENDING->RUNNING 3/5/8 min, TERMINATING->
//     TERMINATED 0.5/1/3 min. "none": no request latency, start 300 ms, stop 200 ms.
//     Everything is divided by TimeScale.
//   - Rate limits "azure": published scim_write 5/s, scim_list 4/s (240/min), scim_get
//     20/s, scim_patch 2/s, permissions_read 100/s, permissions_write 30/s; estimated
//     assignments 10/s, unity_catalog 25/s, clusters 30/s, cluster_events 30/s, policies 50/s. Burst = 1 s
//     worth. Limits overrides apply in either mode; with "none" only overridden
//     classes are enforced. Throttled: 429 REQUEST_LIMIT_EXCEEDED with Retry-After.
//   - Faults: with probability Faults a request fails with 503, 500 or a TCP reset;
//     mutations also with applied_then_503 / applied_then_reset. Decisions hash
//     (seed, endpoint, n-th request to that endpoint), so they reproduce per endpoint
//     however requests interleave. The well-known probe is never faulted or limited.
//   - Error statuses without a published figure: assignment of an unknown principal
//     404 RESOURCE_DOES_NOT_EXIST "Principal not found in account."; deleting an
//     unassigned one 404 "Principal X not in workspace Y"; grants to an unknown or
//     unassigned principal 404 PRINCIPAL_DOES_NOT_EXIST "Could not find principal
//     with name X"; cluster ACL principal unknown/unassigned 400 INVALID_PARAMETER_VALUE
//     "Principal: UserName(X) does not exist"; permissions on an unknown cluster 404
//     RESOURCE_DOES_NOT_EXIST; single_user_name not a workspace user 400
//     INVALID_PARAMETER_VALUE; schema exists 409 SCHEMA_ALREADY_EXISTS; catalog missing
//     404 CATALOG_DOES_NOT_EXIST.
//   - AssignmentLag: for that long after a principal's first assignment PUT, grants,
//     cluster permissions and single_user_name treat it as absent (in memory only).
//   - Seed data: the workspace catalog; Personal Compute policy (family
//     personal-vm, above) also fixing ResourceClass SingleNode, runtime STANDARD
//     and ON_DEMAND_AZURE, allowing Standard_DS3_v2/DS4_v2/DS5_v2/D4ds_v5/
//     NC4as_T4_v3 and spark.master local[...]; Azure node types incl. Standard_DS3_v2 (4 cores, 14336 MB), GPU, a deprecated
//     and a NotAvailableInRegion one.
//   - Clusters list pages at most 100 per page (default 100); filter_by.is_pinned
//     lists pinned clusters.
//   - idempotency_token (raw create only; the typed SDK cannot send it) returns the
//     id of an existing cluster with that token unless it is TERMINATING/TERMINATED.
//   - SCIM: userName and emails stored lower-cased, ids are 16-digit int64 strings,
//     count capped at 10000, attributes/excludedAttributes projections honoured (id is
//     always kept), results in creation order. Deleting a user removes its workspace
//     assignment, grants and cluster ACL entries.
package emulator
