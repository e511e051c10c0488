package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citadel-cloud/citadel/internal/store"
)

// storeUsage exports the store's size on each scrape, so that operators
// see it approach the quota (past which etcd refuses every write) while
// there is time to act (lower --audit-retention, say).
type storeUsage struct{ store *store.Store }

var (
	storeSizeDesc = prometheus.NewDesc("citadel_store_db_size_bytes",
		"Size of the store's etcd database file.", nil, nil)
	storeInUseDesc = prometheus.NewDesc("citadel_store_db_size_in_use_bytes",
		"Bytes of the store's database file that hold data; the rest is free pages reused before the file grows.", nil, nil)
	storeQuotaDesc = prometheus.NewDesc("citadel_store_quota_bytes",
		"Size of the store's database past which etcd refuses writes (embedded etcd; an external cluster's is its own setting).", nil, nil)
)

func (u storeUsage) Describe(ch chan<- *prometheus.Desc) {
	ch <- storeSizeDesc
	ch <- storeInUseDesc
	ch <- storeQuotaDesc
}

func (u storeUsage) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	usage, err := u.store.Usage(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(storeSizeDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(storeSizeDesc, prometheus.GaugeValue, float64(usage.Size))
	ch <- prometheus.MustNewConstMetric(storeInUseDesc, prometheus.GaugeValue, float64(usage.InUse))
	if usage.Quota > 0 {
		ch <- prometheus.MustNewConstMetric(storeQuotaDesc, prometheus.GaugeValue, float64(usage.Quota))
	}
}
