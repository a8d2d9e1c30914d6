package osqwire

// PathIntel is Quarry's addition to the API, beside osquery's paths: where
// Quarry's agent fetches the fleet's threat intelligence sets (POST, with
// its node key; a server without it answers 404).
const PathIntel = "/api/v1/quarry/intel"

// IntelRequest is what an agent sends to PathIntel: its node key and the
// version of each set it holds.
type IntelRequest struct {
	NodeKey string            `json:"node_key"`
	Have    map[string]string `json:"have"`
}

// IntelResponse is the server's answer: Current names every set the fleet
// has now, with its version (an agent drops the fleet's sets not named);
// Sets holds, with their data, those the agent lacks or holds at another
// version; More says that some were left for the next request.
type IntelResponse struct {
	Current map[string]string `json:"current"`
	Sets    []IntelSet        `json:"sets"`
	More    bool              `json:"more,omitempty"`
}

// IntelSet is one intelligence set as agents load it: the feed as uploaded
// (Data, base64 in JSON) in its Format (stix, misp or plain), with the
// load options Confidence (0: the feed's own or the default) and
// TTLSeconds (0: the feed's validity).
type IntelSet struct {
	Source     string `json:"source"`
	Format     string `json:"format"`
	Confidence int    `json:"confidence"`
	TTLSeconds int64  `json:"ttl_seconds"`
	Version    string `json:"version"`
	Data       []byte `json:"data"`
}
