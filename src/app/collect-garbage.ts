// One full garbage collection on request, for memory that only a collection gives back: buffers that
// blob sends dropped (blobcache/send-budget.ts). Node exposes `gc` only under --expose-gc; setting the
// flag at run time and taking `gc` from a fresh context is the documented way to get it without
// changing how the process is started (node's v8.setFlagsFromString docs). A collection of trustgate's
// ~50 MB heap pauses it for ~20–40 ms, which is why it is asked for only after a quiet second.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

export function garbageCollector(): () => void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  return gc;
}
