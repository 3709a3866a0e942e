//go:build tools

// Package tools names the main package scripts/cluster.sh builds, so `go mod tidy` keeps it.
package tools

import _ "github.com/prometheus/blackbox_exporter"
