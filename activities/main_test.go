package activities

import (
	"fmt"
	"os"
	"testing"

	sdklogger "github.com/databricks/databricks-sdk-go/logger"
)

func TestMain(m *testing.M) {
	// The SDK warns on every client built against a server without host
	// metadata; keep test output to what matters.
	sdklogger.DefaultLogger = &sdklogger.SimpleLogger{Level: sdklogger.LevelError}
	os.Exit(m.Run())
}

// tLogger sends Temporal's activity logs to the test log (shown with -v or
// on failure).
type tLogger struct{ t testing.TB }

func (l tLogger) log(level, msg string, kv ...any) {
	l.t.Helper()
	l.t.Logf("%s %s %s", level, msg, fmt.Sprint(kv...))
}
func (l tLogger) Debug(msg string, kv ...any) {}
func (l tLogger) Info(msg string, kv ...any)  { l.log("INFO", msg, kv...) }
func (l tLogger) Warn(msg string, kv ...any)  { l.log("WARN", msg, kv...) }
func (l tLogger) Error(msg string, kv ...any) { l.log("ERROR", msg, kv...) }
