package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/effnas/effnas/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options tunes a Server; zero fields take the defaults in each comment.
type Options struct {
	// Label names the database in the page header, such as a file's base
	// name. Never give it a URL: a page never shows one. Default none.
	Label string
	// Poll is how often an open page asks whether anything changed;
	// default DefaultPoll (750ms).
	Poll time.Duration
	// Log receives failures to read the store, which pages only call a
	// failure; default none.
	Log *slog.Logger
}

// DefaultPoll is how often open pages look for changes.
const DefaultPoll = 750 * time.Millisecond

// Server is the dashboard's HTTP handler over one store. It only reads.
type Server struct {
	st   store.Store
	opts Options
	mux  *http.ServeMux
	now  func() time.Time
}

// New returns the dashboard of st.
func New(st store.Store, opts Options) *Server {
	opts.Poll = cmp.Or(opts.Poll, DefaultPoll)
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{st: st, opts: opts, mux: http.NewServeMux(), now: time.Now}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic("dashboard: " + err.Error())
	}
	files := http.FileServerFS(static)
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", files))
	s.mux.HandleFunc("GET /{$}", s.page(s.studiesPage))
	s.mux.HandleFunc("GET /studies/{id}", s.page(s.studyPage))
	s.mux.HandleFunc("GET /compare", s.page(s.comparePage))
	s.mux.HandleFunc("GET /api/studies", s.api(s.apiStudies))
	s.mux.HandleFunc("GET /api/studies/{id}", s.api(s.apiStudy))
	s.mux.HandleFunc("GET /api/studies/{id}/{figure}", s.api(s.apiFigure))
	s.mux.HandleFunc("GET /api/compare", s.api(s.apiCompare))
	s.mux.HandleFunc("GET /api/version", s.api(s.apiVersion))
	s.mux.HandleFunc("/", s.page(func(w http.ResponseWriter, r *http.Request) error {
		return notFound("there is no page %s here", r.URL.Path)
	}))
	return s
}

// ServeHTTP answers GET and HEAD requests and refuses every other method.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Defence in depth: even a value that escaped escaping could not run
	// a script, load anything from elsewhere, or be framed.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "the dashboard only reads: use GET", http.StatusMethodNotAllowed)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Timeouts of Serve.
const (
	readTimeout    = 10 * time.Second
	writeTimeout   = 60 * time.Second
	idleTimeout    = 2 * time.Minute
	requestTimeout = 45 * time.Second
)

// Serve serves h on l until ctx is done, then shuts down gracefully.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           http.TimeoutHandler(h, requestTimeout, "the dashboard took too long to answer; try again"),
		ReadHeaderTimeout: readTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve the dashboard on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		srv.Close()
	}
	<-done
	return nil
}

// statusError is an error with an HTTP status and a message for the user.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return &statusError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return &statusError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// status maps an error to what the user is told. A store's own error may
// name a server or a path: it goes to the log, the user reads only that
// the database could not be read.
func (s *Server) status(r *http.Request, err error) (int, string) {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return se.code, se.msg
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "the request was cancelled or took too long"
	}
	s.opts.Log.Error("dashboard request failed", "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "the database could not be read; the dashboard's log says why"
}

type handler func(w http.ResponseWriter, r *http.Request) error

// page renders HTML; an error becomes an error page with its status.
func (s *Server) page(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		code, msg := s.status(r, err)
		data := errorPage{pageData: s.pageData(http.StatusText(code), "", ""), Code: code, Message: msg}
		s.render(w, r, code, "error", data)
	}
}

// api writes JSON; an error becomes {"error": "..."} with its status.
func (s *Server) api(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		code, msg := s.status(r, err)
		writeJSON(w, code, map[string]string{"error": msg})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, "{\"error\": %q}\n", "encode the answer: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// render executes a page template into a buffer first, so that a failure
// half way is an error page, not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, data any) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.opts.Log.Error("dashboard page failed", "page", name, "path", r.URL.Path, "err", err)
		http.Error(w, "the page could not be drawn; the dashboard's log says why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// studyID reads the {id} of a path: a bad id is a missing study.
func studyID(r *http.Request) (int64, error) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 1 {
		return 0, notFound("there is no study %q: a study id is a whole number from 1", raw)
	}
	return id, nil
}

// load reads a study for a request; a missing one is a 404.
func (s *Server) load(ctx context.Context, id int64) (*study, error) {
	v, err := loadStudy(ctx, s.st, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("there is no study %d in this database", id)
	}
	return v, err
}

// version fingerprints what the pages of the given studies (every study
// when ids is empty) show: a trial that is planned, claimed or finished,
// a study that changes status, or a search's screening (screenVersion)
// changes it.
func (s *Server) version(ctx context.Context, ids []int64) (string, error) {
	h := fnv.New64a()
	var studies []store.Study
	if len(ids) == 0 {
		all, err := s.st.Studies(ctx)
		if err != nil {
			return "", err
		}
		studies = all
	} else {
		for _, id := range ids {
			st, err := s.st.Study(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return "", err
			}
			studies = append(studies, st)
		}
	}
	for _, st := range studies {
		c, err := s.st.CountTrials(ctx, st.ID)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d %s %d %+v;", st.ID, st.Status, st.Updated.UnixNano(), c)
		if st.Kind == store.KindSearch {
			if err := s.screenVersion(ctx, h, st.ID); err != nil {
				return "", err
			}
		}
	}
	return strconv.FormatUint(h.Sum64(), 36), nil
}

// screenVersion writes into h what a search's screening shows: while its
// supernet trains and its candidates are scored no trial changes, so the
// supernet's checkpoint (its step, checkpoints, holder and when it was
// saved) and the count of screened candidates are fingerprinted. A study
// that does not screen has no supernet: one lookup by key. Heartbeats do
// not change the checkpoint, so a page does not reload on each; the
// promotion to rung 0 plans trials, which change the version.
func (s *Server) screenVersion(ctx context.Context, h io.Writer, id int64) error {
	ck, err := s.st.SupernetInfo(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	n, err := s.st.CountScreened(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "supernet %d %d %t %q %d screened %d;", ck.Step, ck.Checkpoints, ck.Done, ck.Holder, ck.Updated.UnixNano(), n)
	return nil
}

// versionURL is where a page asks for its version.
func versionURL(ids ...int64) string {
	if len(ids) == 0 {
		return "/api/version"
	}
	u := "/api/version?"
	for i, id := range ids {
		if i > 0 {
			u += "&"
		}
		u += "id=" + strconv.FormatInt(id, 10)
	}
	return u
}

func (s *Server) apiVersion(w http.ResponseWriter, r *http.Request) error {
	ids, err := parseIDs(r, 0)
	if err != nil {
		return err
	}
	v, err := s.version(r.Context(), ids)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"version": v})
	return nil
}

// parseIDs reads the id parameters (id=1&id=2, or id=1,2); fewer than
// least ids is a bad request.
func parseIDs(r *http.Request, least int) ([]int64, error) {
	var ids []int64
	seen := map[int64]bool{}
	for _, raw := range r.URL.Query()["id"] {
		for _, part := range bytes.Split([]byte(raw), []byte(",")) {
			if len(part) == 0 {
				continue
			}
			id, err := strconv.ParseInt(string(part), 10, 64)
			if err != nil || id < 1 {
				return nil, notFound("there is no study %q: a study id is a whole number from 1", part)
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) < least {
		return nil, badRequest("choose at least %d studies to compare (id=1&id=2), on the studies page", least)
	}
	return ids, nil
}
