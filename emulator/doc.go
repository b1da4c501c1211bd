// Package emulator is a stateful local Databricks for Cohort: an http.Handler that
// speaks the REST endpoints Cohort uses, faithfully enough that the real
// databricks-sdk-go v0.130.0 works against it unchanged over plain http (PAT auth).
// Behaviour follows /work/shared/reference/databricks-api.md; points marked [Est]
// there are configurable or documented below.
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
// --assignment-lag D, --cluster-start-delay D, --cluster-stop-delay D,
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
// Account (/api/2.0/accounts/{account_id}/...): scim.users.create/list/get/delete
// (scim/v2/Users), assignments.put/delete (workspaces/{ws}/permissionassignments/
// principals/{id}), assignments.list, assignments.permissions. Workspace: catalogs.get/
// list/create, schemas.create/get/list/delete, grants.get/update (/api/2.1/unity-catalog/
// ...), clusters.create/get/list/delete/permanent_delete/start/spark_versions/
// list_node_types (/api/2.1/clusters/..., /api/2.0 also accepted), policies.list/get,
// policy_families.get, permissions.get/update (PATCH)/set (PUT)/levels
// (/api/2.0/permissions/clusters/{id}), scim.me (/api/2.0/preview/scim/v2/Me, with the
// X-Databricks-Org-Id header), wellknown (/.well-known/databricks-config, no auth,
// answered with account_id, workspace_id, cloud azure, host_type workspace).
// Unknown paths or methods: 404 ENDPOINT_NOT_FOUND; malformed JSON: 400
// MALFORMED_REQUEST; panics: 500 INTERNAL_ERROR JSON. No token: 401 UNAUTHENTICATED;
// the user token or a minted participant token gets 403 PERMISSION_DENIED on admin
// APIs (all account APIs, catalog/schema create and delete, grants update, cluster
// create and permanent delete); cluster start/terminate need CAN_RESTART or
// CAN_MANAGE, permission changes need CAN_MANAGE (the single-user binding grants
// nothing).
//
// # Control API (admin token, never counted with Databricks endpoints)
//
//	GET  /emulator/v1/stats         requests per endpoint and status ("0" = dropped connection), throttled, faults, objects
//	POST /emulator/v1/stats/reset
//	GET  /emulator/v1/config        rate classes (rps, burst, endpoints), per-endpoint latency ms at scale 1, cluster delays, scale, seed
//	PUT  /emulator/v1/rules         {"refuse_users":["regexp"]}: matching SCIM creates get a permanent SCIM 400; [] clears
//	POST /emulator/v1/faults        {"endpoint":"clusters.create","mode":"applied_then_503|applied_then_reset|503|500|reset|429","count":1}
//	GET  /emulator/v1/faults        queued one-shot faults
//	POST /emulator/v1/tokens        {"user_name":"a@b.c"} -> {"token":"..."}: a non-admin PAT acting as that user
//
// # State
//
// With StatePath, every answered mutation is appended (not fsynced) to a JSON-lines
// journal before the answer is written, so kill -9 loses nothing answered; a torn
// last line is ignored. The journal is compacted to one record per object on load
// and on Close. Cluster transitions are stored as absolute deadlines, so a restarted
// emulator continues each state machine where it was.
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
//     assignments 10/s, unity_catalog 25/s, clusters 30/s, policies 50/s. Burst = 1 s
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
//   - Seed data: catalog main; Personal Compute policy (family personal-vm) whose
//     definition requires data_security_mode, fixes num_workers 0, the singleNode
//     profile, ResourceClass SingleNode, runtime STANDARD and ON_DEMAND_AZURE, allows
//     Standard_DS3_v2/DS4_v2/DS5_v2/D4ds_v5/NC4as_T4_v3, spark.master local[...],
//     autotermination default 4320; runtimes where 16.x ML is not LTS so
//     SelectSparkVersion{ML, LongTermSupport, Latest} picks 15.4.x-cpu-ml-scala2.12;
//     Azure node types incl. Standard_DS3_v2 (4 cores, 14336 MB), GPU, a deprecated
//     and a NotAvailableInRegion one.
//   - Clusters list pages at most 100 per page (default 100); terminated clusters are
//     never purged; pinning is not emulated (filter_by.is_pinned=true lists none).
//   - idempotency_token (raw create only; the typed SDK cannot send it) returns the
//     id of an existing cluster with that token unless it is TERMINATING/TERMINATED.
//   - SCIM: userName and emails stored lower-cased, ids are 16-digit int64 strings,
//     count capped at 10000, attributes/excludedAttributes projections honoured (id is
//     always kept), results in creation order. Deleting a user removes its workspace
//     assignment, grants and cluster ACL entries.
package emulator
