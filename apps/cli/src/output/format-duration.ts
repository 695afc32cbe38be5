/**
 * A number of seconds as Vault's CLI shows a TTL: `768h`, `1h30m`, `45s`; 0 means no expiry
 * and shows as `∞`.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return "∞";
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = Math.floor(seconds % 60);
  return `${hours > 0 ? `${hours}h` : ""}${minutes > 0 ? `${minutes}m` : ""}${rest > 0 || (hours === 0 && minutes === 0) ? `${rest}s` : ""}`;
}
