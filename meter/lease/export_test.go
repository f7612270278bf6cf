package lease

// Kill stops s's background work without giving anything back, as a
// crash would (tests of what the store does alone).
func Kill(s *Store) {
	s.mu.Lock()
	if !s.closed {
		close(s.stop)
	}
	s.closed = true
	s.mu.Unlock()
	s.reaped.Wait()
}
