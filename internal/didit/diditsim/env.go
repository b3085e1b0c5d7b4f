package diditsim

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ConfigFromEnv builds a Config for a stand-alone simulator (the
// `kycgate didit-sim` command) from environment variables:
//
//	DIDITSIM_API_KEY            required: the x-api-key clients must send
//	DIDITSIM_BASE_URL           required: public URL of the simulator
//	DIDITSIM_WEBHOOK_URL        optional: one webhook destination
//	DIDITSIM_WEBHOOK_SECRET     required with DIDITSIM_WEBHOOK_URL
//	DIDITSIM_WEBHOOK_VERSION    optional: v3 (default) or v2
//	DIDITSIM_WORKFLOW_ID        optional: accepted workflow UUIDs, comma-separated
//	DIDITSIM_RETRY_SCALE        optional float ≥ 0 scaling Didit's 1 min / 4 min
//	                            retry delays (1 = real, 0 = immediate); default 1
//	DIDITSIM_SANDBOX_KEY        optional second key (environment "sandbox")
//	DIDITSIM_NOT_STARTED_WEBHOOK optional: create (default) or open
//
// Now, HTTPClient and Logger are left for the caller.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	var errs []error

	cfg.APIKey = get("DIDITSIM_API_KEY")
	if cfg.APIKey == "" {
		errs = append(errs, errors.New("DIDITSIM_API_KEY is required"))
	}
	cfg.BaseURL = get("DIDITSIM_BASE_URL")
	if cfg.BaseURL == "" {
		errs = append(errs, errors.New("DIDITSIM_BASE_URL is required"))
	} else if _, err := cleanBaseURL(cfg.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("DIDITSIM_BASE_URL: %w", err))
	}
	cfg.SandboxKey = get("DIDITSIM_SANDBOX_KEY")

	if u := get("DIDITSIM_WEBHOOK_URL"); u != "" {
		d := Destination{URL: u, Secret: getenv("DIDITSIM_WEBHOOK_SECRET"), Version: get("DIDITSIM_WEBHOOK_VERSION")}
		if d.Secret == "" {
			errs = append(errs, errors.New("DIDITSIM_WEBHOOK_SECRET is required with DIDITSIM_WEBHOOK_URL"))
		} else if _, err := normalizeDestinations([]Destination{d}); err != nil {
			errs = append(errs, fmt.Errorf("DIDITSIM_WEBHOOK_*: %w", err))
		}
		cfg.Webhooks = []Destination{d}
	}

	if v := get("DIDITSIM_WORKFLOW_ID"); v != "" {
		for _, id := range strings.Split(v, ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			if _, ok := normalizeUUID(id); !ok {
				errs = append(errs, fmt.Errorf("DIDITSIM_WORKFLOW_ID: %q is not a UUID", id))
			}
			cfg.WorkflowIDs = append(cfg.WorkflowIDs, id)
		}
	}

	if v := get("DIDITSIM_RETRY_SCALE"); v != "" {
		scale, err := strconv.ParseFloat(v, 64)
		if err != nil || scale < 0 || math.IsInf(scale, 0) || math.IsNaN(scale) {
			errs = append(errs, fmt.Errorf("DIDITSIM_RETRY_SCALE: %q must be a number ≥ 0", v))
		} else {
			cfg.RetrySchedule = make([]time.Duration, len(DefaultRetrySchedule))
			for i, d := range DefaultRetrySchedule {
				cfg.RetrySchedule[i] = time.Duration(float64(d) * scale)
			}
		}
	}

	if v := get("DIDITSIM_NOT_STARTED_WEBHOOK"); v != "" {
		if v != NotStartedOnCreate && v != NotStartedOnOpen {
			errs = append(errs, fmt.Errorf("DIDITSIM_NOT_STARTED_WEBHOOK: %q must be create or open", v))
		}
		cfg.NotStartedWebhook = v
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("diditsim: %w", err)
	}
	return cfg, nil
}
