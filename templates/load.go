package templates

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxFileSize bounds one template file; anything larger is a mistake.
const maxFileSize = 1 << 20

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// source is the text of one template file, and the path errors name.
type source struct {
	path string
	text string
}

// Load reads the embedded templates and those in o.Dir, and validates them
// all (see the package documentation). It reports every problem at once,
// joined, each naming its file and line; on error it returns no Set.
func Load(o Options) (*Set, error) {
	if o.FallbackLanguage != "" && !knownLanguage(o.FallbackLanguage) {
		return nil, fmt.Errorf("templates: fallback language %q is not a lower-case ISO 639-1 code such as en", o.FallbackLanguage)
	}
	embedded, err := fs.Sub(shipped, "files")
	if err != nil {
		return nil, fmt.Errorf("templates: embedded files: %w", err)
	}
	files, errs := readTree(embedded, "templates/files")
	if o.Dir != "" {
		over, overErrs := readOverrides(o.Dir)
		errs = append(errs, overErrs...)
		maps.Copy(files, over)
	}
	s := &Set{fallback: o.FallbackLanguage, shop: o.Shop}
	c := &catalog{email: make(map[key]*emailTemplate), sms: make(map[key]*smsTemplate)}
	for _, k := range slices.SortedFunc(maps.Keys(files), compareKeys) {
		errs = append(errs, s.add(c, k, files[k])...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.cat.Store(c)
	return s, nil
}

func compareKeys(a, b key) int {
	return strings.Compare(a.name+"/"+a.lang+"."+a.channel, b.name+"/"+b.lang+"."+b.channel)
}

func readOverrides(dir string) (map[key]source, []error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, []error{fmt.Errorf("templates: override directory: %w", err)}
	}
	if !info.IsDir() {
		return nil, []error{fmt.Errorf("templates: override directory %s is not a directory", dir)}
	}
	return readTree(os.DirFS(dir), dir)
}

// readTree reads the template files of fsys, laid out as
// <name>/<lang>.<channel>.tmpl; errors name files as root/<path>.
func readTree(fsys fs.FS, root string) (map[key]source, []error) {
	files := make(map[key]source)
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return files, []error{fmt.Errorf("templates: read %s: %w", root, err)}
	}
	var errs []error
	for _, e := range entries {
		if hidden(e.Name()) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		info, err := fs.Stat(fsys, e.Name()) // follows symbolic links
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("templates: %w", err))
		case !info.IsDir():
			errs = append(errs, fmt.Errorf("templates: %s: unexpected file: templates are <name>/<lang>.email.tmpl or <name>/<lang>.sms.tmpl", dir))
		case !namePattern.MatchString(e.Name()):
			errs = append(errs, fmt.Errorf("templates: %s: template name must be 1-63 lower-case letters, digits or '-'", dir))
		default:
			errs = append(errs, readTemplateDir(fsys, e.Name(), dir, files)...)
		}
	}
	return files, errs
}

// readTemplateDir reads the files of template directory name into files.
func readTemplateDir(fsys fs.FS, name, dir string, files map[key]source) []error {
	entries, err := fs.ReadDir(fsys, name)
	if err != nil {
		return []error{fmt.Errorf("templates: read %s: %w", dir, err)}
	}
	var errs []error
	for _, e := range entries {
		if hidden(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		info, err := fs.Stat(fsys, name+"/"+e.Name())
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: %w", err))
			continue
		}
		if info.IsDir() {
			errs = append(errs, fmt.Errorf("templates: %s: unexpected directory: templates are <name>/<lang>.email.tmpl or <name>/<lang>.sms.tmpl", path))
			continue
		}
		lang, channel, err := parseFileName(e.Name())
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: %s: %w", path, err))
			continue
		}
		text, err := readFile(fsys, name+"/"+e.Name(), path, info.Size())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files[key{name, channel, lang}] = source{path: path, text: text}
	}
	return errs
}

// hidden reports names Load skips: editor swap files, ConfigMap internals.
func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// parseFileName splits "<lang>.<channel>.tmpl".
func parseFileName(file string) (lang, channel string, err error) {
	base, ok := strings.CutSuffix(file, ".tmpl")
	lang, channel, ok2 := strings.Cut(base, ".")
	if !ok || !ok2 || (channel != ChannelEmail && channel != ChannelSMS) {
		return "", "", errors.New("unexpected file: want <lang>.email.tmpl or <lang>.sms.tmpl, e.g. sk.email.tmpl")
	}
	if !knownLanguage(lang) {
		return "", "", fmt.Errorf("unknown language code %q: want a lower-case ISO 639-1 code such as sk, cs, pl or en", lang)
	}
	return lang, channel, nil
}

// readFile reads one template file as UTF-8 text with LF line ends; a
// leading byte-order mark is dropped.
func readFile(fsys fs.FS, name, path string, size int64) (string, error) {
	if size > maxFileSize {
		return "", fmt.Errorf("templates: %s: %d bytes, more than the %d a template may have", path, size, maxFileSize)
	}
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return "", fmt.Errorf("templates: %w", err)
	}
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	if !utf8.Valid(b) {
		return "", fmt.Errorf("templates: %s:%d: not valid UTF-8", path, invalidUTF8Line(b))
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n"), nil
}

// invalidUTF8Line returns the line of the first invalid UTF-8 byte in b.
func invalidUTF8Line(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return 1 + bytes.Count(b[:i], []byte("\n"))
		}
		i += n
	}
	return 1
}
