// One download with curl (a C client, as fast as docker's or containerd's Go client here), and the CPU
// the serving process spent on it: what the blob benches measure every path with.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU time (user + system, every thread) a process has used, in seconds, from /proc. */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** Download once with curl into /dev/null (200 and `size` bytes or it throws); MB/s, and the CPU seconds per GiB `pid` (the server) spent. */
export async function curlPull(url: string, size: number, pid?: number): Promise<{ MBps: number; cpuPerGiB: number }> {
  const cpu0 = pid ? cpuSeconds(pid) : 0;
  const out = await new Promise<string>((resolve, reject) =>
    execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', url], (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
  const [code, bytes, seconds] = out.trim().split(' ').map(Number) as [number, number, number];
  if (code !== 200 || bytes !== size) throw new Error(`${url}: ${code}, ${bytes} bytes`);
  return { MBps: size / 1e6 / seconds, cpuPerGiB: pid ? (cpuSeconds(pid) - cpu0) / (size / 2 ** 30) : NaN };
}
