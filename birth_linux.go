package filecast

import (
	"os"

	"golang.org/x/sys/unix"
)

// bornAt returns when the file at path (or, if path is empty, open as f)
// was created, in Unix nanoseconds, where the file system records it; 0
// elsewhere.
func bornAt(path string, f *os.File) int64 {
	var st unix.Statx_t
	var err error
	if path == "" {
		err = unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_BTIME, &st)
	} else {
		err = unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_BTIME, &st)
	}
	if err != nil || st.Mask&unix.STATX_BTIME == 0 {
		return 0
	}
	return st.Btime.Sec*1e9 + int64(st.Btime.Nsec)
}
