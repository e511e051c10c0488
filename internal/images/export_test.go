package images

// Mirrored says whether Lookup finds name in memory.
func (c *Catalog) Mirrored(name string) bool {
	if c.mirror == nil {
		return false
	}
	_, ok := c.mirror.Get(key(name))
	return ok
}
