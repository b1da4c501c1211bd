package roster

// Participant is one validated roster row with the Databricks names derived from
// its email. It travels through workflow and activity inputs, so it holds no
// secrets and stays small (a few hundred bytes).
type Participant struct {
	// Email is the participant's sign-in name, lower-cased; it is the account
	// user's userName and the principal of every grant and permission.
	Email string `json:"email"`
	// DisplayName is kept exactly as written in the CSV (Japanese, accents, emoji).
	DisplayName string `json:"display_name"`
	// Schema is the Unity Catalog schema name (not the full name) for this participant.
	Schema string `json:"schema"`
	// ClusterName is the personal cluster's name.
	ClusterName string `json:"cluster_name"`
	// Line is the CSV line the row came from, for messages a person can act on.
	Line int `json:"line,omitempty"`
}
