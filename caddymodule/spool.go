package caddymodule

import (
	"os"
	"sync"

	"go.uber.org/zap"

	"github.com/creditgate/creditgate/meter/usage"
)

// sweptDirs are the temp dirs this process has swept for spool files of
// dead processes: each once, when the first config that spools there is
// loaded (config reloads do not sweep again).
var sweptDirs sync.Map

// removeStaleSpools removes the spool files a killed gateway left in the
// route's temp dir. Files of live gateways sharing the dir are locked and
// kept (usage.RemoveStaleSpools).
func (h *Handler) removeStaleSpools() {
	dir := h.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	if _, done := sweptDirs.LoadOrStore(dir, true); done {
		return
	}
	n, size, err := usage.RemoveStaleSpools(dir)
	if err != nil {
		h.logger.Warn("sweeping spool files of dead processes", zap.String("temp_dir", dir), zap.Error(err))
	}
	if n > 0 {
		h.logger.Info("removed spool files left by a dead process", zap.String("temp_dir", dir),
			zap.Int("files", n), zap.Int64("bytes", size))
	}
}
