// proc.mjs - what the load generators read about a server from /proc.
import { readFileSync, readdirSync } from 'node:fs';

export function rssKB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function statFields(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' '); // [0] is field 3 (state)
}

/** utime + stime of the whole process (all threads), in seconds. */
export function cpuS(pid, clkTck) {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / clkTck;
}

/** stime alone: the part of cpuS spent in the kernel on the process's behalf. */
export function kernelS(pid, clkTck) {
  return Number(statFields(pid)[12]) / clkTck;
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusyS(clkTck) {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is inside user)
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / clkTck;
}

/** Open descriptors of the process (needs the same user, or root). */
export function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}
