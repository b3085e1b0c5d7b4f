// Package api holds kycgate's wire contract, api/openapi.yaml, embedded so tests and tools
// read the very file that is reviewed and published.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the kycgate HTTP API.
//
//go:embed openapi.yaml
var OpenAPI []byte
