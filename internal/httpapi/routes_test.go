package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/kycgate/kycgate/api"
	"github.com/kycgate/kycgate/internal/httpapi"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// TestRoutesMatchOpenAPI: every path and method in api/openapi.yaml is
// served (never the generic not_found or method_not_allowed), and every
// other method on those paths answers 405 with an Allow header naming
// exactly the documented methods. The admin API's paths (/admin/v1, on the
// admin listener; internal/admin tests them there) do not exist here: any
// method on them is 404.
func TestRoutesMatchOpenAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: noMail{}}, kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := svc.CreateTenant(ctx, kyc.NewTenant{Name: "T"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Service: svc}))
	defer srv.Close()

	paths := doc.Paths.InMatchingOrder()
	if len(paths) < 18 {
		t.Fatalf("only %d paths documented", len(paths))
	}
	for _, p := range paths {
		item := doc.Paths.Value(p)
		concrete := strings.ReplaceAll(p, "{kyc_type}", "verify_public_kyc")
		admin := strings.HasPrefix(p, "/admin/")
		var documented []string
		for m := range item.Operations() {
			documented = append(documented, m)
		}
		sort.Strings(documented)
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			req, _ := http.NewRequest(m, srv.URL+concrete, strings.NewReader(`{}`))
			req.Header.Set("x-api-key", key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			isDoc := item.GetOperation(m) != nil
			switch {
			case admin:
				if resp.StatusCode != 404 {
					t.Errorf("%s %s is the admin API's but answered %d on the partner listener", m, p, resp.StatusCode)
				}
			case isDoc && (resp.StatusCode == 404 && p != "/kyc/create/{kyc_type}" || resp.StatusCode == 405):
				t.Errorf("%s %s is documented but answered %d", m, p, resp.StatusCode)
			case !isDoc && resp.StatusCode != 405:
				t.Errorf("%s %s is not documented but answered %d", m, p, resp.StatusCode)
			case !isDoc && resp.Header.Get("Allow") != strings.Join(documented, ", "):
				t.Errorf("%s %s: Allow = %q, documented %v", m, p, resp.Header.Get("Allow"), documented)
			}
		}
	}
}
