// FindChild race in vcsim 0.24.2: while CloneVM_Task registers the new VM in its folder, the VM is
// briefly a bare *mo.VirtualMachine, and a concurrent SearchIndex.FindChild on that folder panics
// ("does not have a Name"), which closes the client's connection. Real vCenter answers such a call.
// The /sdk handler retries just FindChild calls that panicked (read-only, so safe to repeat).
package main

import (
	"bytes"
	"io/ioutil"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"
)

func findChildHandler(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/sdk") {
			inner.ServeHTTP(w, r)
			return
		}
		body, err := ioutil.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		clonePlacements.noteRequest(body)
		if !bytes.Contains(body, []byte("<FindChild")) {
			r.Body = ioutil.NopCloser(bytes.NewReader(body))
			inner.ServeHTTP(w, r)
			return
		}
		for attempt := 0; ; attempt++ {
			rec := httptest.NewRecorder()
			r.Body = ioutil.NopCloser(bytes.NewReader(body))
			if serveRecovered(inner, rec, r) || attempt == 50 {
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func serveRecovered(inner http.Handler, w http.ResponseWriter, r *http.Request) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	inner.ServeHTTP(w, r)
	return true
}
