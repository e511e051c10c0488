// Package update makes and checks Citadel's signed, air-gapped update
// bundles. A vendor signs a release (node images, the agent binary,
// firmware per machine SKU, switch images, policy packs) into one file with
// [Build]; an operator, offline, checks it with [Verify] against the root of
// trust installed once ([NewRoot]'s output, "trust add") and against the
// [State] last accepted. A bundle that was changed, signed by someone else,
// is stale, or is older than what is installed is refused with an [*Error]
// that names the file and one machine-readable [Reason].
//
// The signing and the checking are The Update Framework's (TUF, go-tuf v2):
// a bundle is a TUF repository in a tar file, and Verify runs TUF's client
// workflow over it (go-tuf's trustedmetadata: root chain, timestamp,
// snapshot, targets, with thresholds, expiry and version checks), not a
// hand-written one. This package adds what TUF leaves to its user: the
// archive, the rollback check against what the operator accepted before,
// the release's cluster version and the meaning of each target.
//
// # Bundle format
//
// A bundle is one uncompressed tar archive of regular files (directory
// entries for metadata/ and targets/ are allowed and ignored):
//
//	targets/release.json      {"clusterVersion":"4.2.0","notes":"..."}: the release
//	targets/<name>            each artifact, named as in targets.json
//	metadata/<N>.root.json    the vendor's root chain, N = 1, 2, ...: root N+1 is
//	                          signed by the root keys of root N and by its own
//	metadata/targets.json     signed by the targets keys: each target's length,
//	                          sha256 and custom {"kind","version","machineSku","component"}
//	metadata/snapshot.json    signed by the snapshot keys: targets.json's version,
//	                          length and sha256
//	metadata/timestamp.json   signed by the timestamp keys: snapshot.json's
//	                          version, length and sha256
//
// Entries may come in any order; Build writes the targets first and the
// metadata last, so that it reads each artifact once. A target name is one
// or more '/'-separated segments of [A-Za-z0-9._+-] that start with a letter
// or digit, so no name can leave the directory it is unpacked to. Each
// target's custom metadata has a [Kind], the artifact's version and, for
// firmware only, the machine SKU it is for and the component it flashes
// (the Id or Name of the BMC's FirmwareInventory member, e.g. "BIOS").
// Build requires the component; Verify accepts firmware without one, as
// bundles built before it existed have none. release.json is the one target
// of kind "release"; its custom version is the cluster version. Nothing else
// may be in the archive.
//
// The root chain may start at 1 or at any version up to one past the one
// the operator trusts; roots older than the trusted one are only checked to
// be well formed, the one of the trusted version must be the trusted root,
// and each newer one must be signed by the threshold of its predecessor's
// root keys and of its own. A bundle whose chain ends before the trusted
// version is a rollback. Verify requires snapshot.json and timestamp.json to
// give the sha256 of the file they sign, so that only signed bytes reach the
// parsers.
//
// The package does no I/O of its own: Build writes to an io.Writer, Verify
// reads an io.ReaderAt (a file), and a verified [Artifact] reads its bytes
// from that file again when opened. Any package may import update; the
// vendor CLI and the operator's import command (cmd/citadel update) and the
// rollout engine do.
package update
