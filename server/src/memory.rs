//! How the server's allocator gives memory back, set once at the start of `main`, before any
//! thread of ours starts (the binary's global allocator is mimalloc).

/// mimalloc's `purge_delay` (its option 15; `allocator_option_15_is_the_purge_delay` checks).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// By default mimalloc (v3) gives freed memory back to the OS a second later, and only when the
/// thread that freed it next allocates: the brotli tables of start-up stayed (the server sat at
/// 200 MB after start, 70 MB after the next requests), as did whatever an idle thread freed last.
/// At once, it stays under 100 MB; throughput measured the same (bench.sh).
// The one call into the allocator's C API.
#[allow(unsafe_code)]
pub fn release_freed_memory_at_once() {
    // SAFETY: sets one of mimalloc's integer options; main calls it before other threads start.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// mimalloc asks for transparent huge pages on its arenas, and Linux then backs every 2 MiB that a
/// small object touches with a whole huge page: about 26 to 35 MB more than the heap uses
/// (measured: idle 55 MB → 27 MB; a login flood's peak 97–106 MB → 71 MB). Hashes run a fifth
/// slower without them, as fast as the benchmark's reference hash. mimalloc's own switch
/// (`allow_thp`) does the same only when read from the environment before `main`; set from here it
/// would merely stop asking for huge pages on later arenas. The process-wide flag covers the arena
/// mapped already (Linux checks it whenever a page is first touched), and THP set to `always`.
/// `false` if Linux refused it.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn no_transparent_huge_pages() -> bool {
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    // SAFETY: sets one flag of this process's memory map; no pointer is passed.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) == 0 }
}

#[cfg(not(target_os = "linux"))]
pub fn no_transparent_huge_pages() -> bool {
    true
}

#[cfg(test)]
mod tests {
    #[test]
    #[allow(unsafe_code)]
    fn allocator_option_15_is_the_purge_delay() {
        // mimalloc v3's defaults: a purge delay of 1,000 ms, and an arena multiplier (option 24)
        // of 1: if the bundled mimalloc renumbers its options, this fails before the wrong one is
        // set. (No test of this binary sets them.)
        // SAFETY: reads two of mimalloc's integer options.
        let (delay, arena_mult) = unsafe {
            (libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY), libmimalloc_sys::mi_option_get(24))
        };
        assert_eq!((delay, arena_mult), (1000, 1));
    }

    #[test]
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn transparent_huge_pages_are_off() {
        assert!(super::no_transparent_huge_pages());
        let unused: libc::c_ulong = 0;
        // SAFETY: reads one flag of this process's memory map.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, unused, unused, unused, unused) }, 1);
    }
}
