// RFC 3339 date-times (section 5.6), strictly: `Date.parse` alone accepts 2026-02-30 (rolling it over to
// March 2) and forms without an offset (read as local time), and a freeze instant must mean one thing.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

/** The instant, or undefined when `s` is not an RFC 3339 date-time with a valid calendar date and an offset. */
export function parseRfc3339(s: string): Date | undefined {
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return undefined;
  // Leap seconds (:60) cannot be represented by a Date: refused rather than silently rolled over.
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return undefined;
  const t = Date.parse(s.replace(' ', 'T').toUpperCase());
  return Number.isNaN(t) ? undefined : new Date(t);
}
