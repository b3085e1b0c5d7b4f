package api_test

import (
	"bytes"
	"testing"

	"github.com/kycgate/kycgate/api"
)

func TestOpenAPIIsEmbedded(t *testing.T) {
	if !bytes.HasPrefix(api.OpenAPI, []byte("openapi: 3.1.0\n")) {
		t.Errorf("api.OpenAPI does not start with the 3.1.0 header: %.40q", api.OpenAPI)
	}
}
