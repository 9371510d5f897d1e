package customers

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// writeHugeRowCSV writes a file whose row on line 3 holds a field of size
// bytes, between two good rows.
func writeHugeRowCSV(t *testing.T, size int, quoted bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "huge.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("id,name\nc-1,Jana\nc-2,")
	if quoted {
		f.WriteString(`"`)
	}
	chunk := bytes.Repeat([]byte("a"), 1<<20)
	if quoted {
		copy(chunk[len(chunk)/2:], "\n") // a quoted field may span lines
	}
	for n := 0; n < size; n += len(chunk) {
		f.Write(chunk)
	}
	if quoted {
		f.WriteString(`"`)
	}
	f.WriteString("\nc-3,Petr\n")
	return path
}

// A row far longer than any valid one is refused without being read into
// memory whole: the import fails, naming the line, with the rows before it
// imported. Not parallel: it measures this goroutine's allocations.
func TestImportRefusesAHugeRowWithoutReadingIt(t *testing.T) {
	for _, quoted := range []bool{false, true} {
		b := setup(t)
		path := writeHugeRowCSV(t, 64<<20, quoted)
		id := "huge-unquoted"
		if quoted {
			id = "huge-quoted"
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		sum, err := b.store.Import(t.Context(), ImportRequest{ImportID: id, Path: path})
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s: importing a file with a 64 MiB row allocated %d MiB; want it not read whole", id, alloc>>20)
		}
		want := "line 3: the row is longer than 1 MiB"
		if !errors.Is(err, ErrBadImport) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: Import error = %v; want ErrBadImport with %q", id, err, want)
		}
		if sum.Status != ImportFailed || sum.Rows != 1 || sum.Imported != 1 || !strings.Contains(sum.Error, want) {
			t.Fatalf("%s: summary = %+v; want failed after 1 imported row, naming line 3", id, sum)
		}
	}
}

// A header line far longer than any valid one is refused the same way.
func TestImportRefusesAHugeHeader(t *testing.T) {
	b := setup(t)
	path := writeCSV(t, "id,"+strings.Repeat("x", 2<<20)+"\nc-1\n")
	_, err := b.store.Import(t.Context(), ImportRequest{ImportID: "huge-header", Path: path})
	if want := "header: longer than 1 MiB"; !errors.Is(err, ErrBadImport) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Import error = %v; want ErrBadImport with %q", err, want)
	}
}
