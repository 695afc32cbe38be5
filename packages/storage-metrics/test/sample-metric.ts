import type { Registry } from "prom-client";

/**
 * The value of one sample (0 when absent) from the registry's JSON view, the way Prometheus
 * would scrape it: `suffix` picks a histogram's `_count`, `_sum` or `_bucket` series.
 */
export async function sampleMetric(registry: Registry, name: string, labels: Record<string, string>, suffix = ""): Promise<number> {
  const metrics = await registry.getMetricsAsJSON();
  const metric = metrics.find((m) => m.name === name);
  if (!metric) return 0;
  const found = (metric.values as Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>).find(
    (v) => (suffix === "" || v.metricName === `${name}${suffix}`) && Object.entries(labels).every(([k, value]) => v.labels[k] === value),
  );
  return found?.value ?? 0;
}
