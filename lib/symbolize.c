/* Frame addresses -> function names, with libelf (see symbolize.h). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gelf.h>
#include <libelf.h>
#include "symbolize.h"

/* One function symbol: [lo, hi) in the file's virtual addresses. */
struct sym {
	uint64_t lo, hi;
	char *name;
};

/* A loadable segment: file offsets [off, off + size) sit at vaddr. */
struct seg {
	uint64_t off, size, vaddr;
};

/* What one file gives: its segments and sorted function symbols; ok = 0
 * for a file that could not be read (gone, not ELF, other build id). */
struct elf_file {
	char *path;
	uint8_t build_id[TJ_BUILD_ID_MAX];
	uint8_t build_id_len;
	int ok;
	struct seg *segs;
	size_t nsegs;
	struct sym *syms;
	size_t nsyms;
};

struct tj_symbolizer {
	struct elf_file *files;
	size_t nfiles, cap;
};

static int elf_ready(void)
{
	return elf_version(EV_CURRENT) != EV_NONE;
}

static size_t note_build_id(Elf *e, uint8_t *out, size_t max)
{
	size_t nph = 0;

	if (elf_getphdrnum(e, &nph) != 0)
		return 0;
	/* The notes are found through the program headers, which even a
	 * stripped file keeps. */
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_NOTE)
			continue;
		Elf_Data *d = elf_getdata_rawchunk(e, ph.p_offset, ph.p_filesz, ELF_T_NHDR);
		if (!d)
			continue;
		size_t off = 0, name_off, desc_off;
		GElf_Nhdr nh;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    memcmp((const char *)d->d_buf + name_off, "GNU", 4) == 0) {
				size_t n = nh.n_descsz < max ? nh.n_descsz : max;
				memcpy(out, (const char *)d->d_buf + desc_off, n);
				return n;
			}
		}
	}
	return 0;
}

size_t tj_elf_build_id(const char *path, uint8_t *out, size_t max)
{
	size_t n = 0;
	int fd;

	if (!elf_ready() || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	if (e && elf_kind(e) == ELF_K_ELF)
		n = note_build_id(e, out, max);
	elf_end(e);
	close(fd);
	return n;
}

static int sym_cmp(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The function symbols of one symbol table section. */
static void load_syms(struct elf_file *f, Elf *e, Elf_Scn *scn, GElf_Shdr *sh)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t n;

	if (!d || sh->sh_entsize == 0)
		return;
	n = sh->sh_size / sh->sh_entsize;
	f->syms = calloc(n ? n : 1, sizeof(*f->syms));
	if (!f->syms)
		return;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym s;
		const char *name;
		if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
		    s.st_shndx == SHN_UNDEF || s.st_value == 0 || s.st_size == 0)
			continue;
		name = elf_strptr(e, sh->sh_link, s.st_name);
		if (!name || !*name || !(name = strdup(name)))
			continue;
		f->syms[f->nsyms].lo = s.st_value;
		f->syms[f->nsyms].hi = s.st_value + s.st_size;
		f->syms[f->nsyms].name = (char *)name;
		f->nsyms++;
	}
	qsort(f->syms, f->nsyms, sizeof(*f->syms), sym_cmp);
}

static void load_file(struct elf_file *f, const struct tj_map *m)
{
	Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
	GElf_Shdr sh, symsh, dynsh;
	size_t nph = 0;
	int fd;

	if (!elf_ready() || (fd = open(m->path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF || elf_getphdrnum(e, &nph) != 0)
		goto out;
	/* A file replaced since capture (another build) would name the
	 * wrong functions: only file+offset can be trusted then. */
	if (m->build_id_len) {
		uint8_t id[TJ_BUILD_ID_MAX];
		size_t n = note_build_id(e, id, sizeof(id));
		if (n != m->build_id_len || memcmp(id, m->build_id, n) != 0)
			goto out;
	}
	f->segs = calloc(nph ? nph : 1, sizeof(*f->segs));
	if (!f->segs)
		goto out;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD) {
			f->segs[f->nsegs].off = ph.p_offset;
			f->segs[f->nsegs].size = ph.p_filesz;
			f->segs[f->nsegs].vaddr = ph.p_vaddr;
			f->nsegs++;
		}
	}
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB) {
			symtab = scn;
			symsh = sh;
		} else if (sh.sh_type == SHT_DYNSYM) {
			dynsym = scn;
			dynsh = sh;
		}
	}
	if (symtab)
		load_syms(f, e, symtab, &symsh);
	if (f->nsyms == 0 && dynsym) {
		free(f->syms);
		f->syms = NULL;
		load_syms(f, e, dynsym, &dynsh);
	}
	f->ok = 1;
out:
	elf_end(e);
	close(fd);
}

struct tj_symbolizer *tj_symbolizer_new(void)
{
	return calloc(1, sizeof(struct tj_symbolizer));
}

void tj_symbolizer_free(struct tj_symbolizer *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->nfiles; i++) {
		struct elf_file *f = &z->files[i];
		for (size_t j = 0; j < f->nsyms; j++)
			free(f->syms[j].name);
		free(f->syms);
		free(f->segs);
		free(f->path);
	}
	free(z->files);
	free(z);
}

/* The file of mapping m, loaded on first use; NULL if out of memory. */
static struct elf_file *file_of(struct tj_symbolizer *z, const struct tj_map *m)
{
	for (size_t i = 0; i < z->nfiles; i++) {
		struct elf_file *f = &z->files[i];
		if (strcmp(f->path, m->path) == 0 && f->build_id_len == m->build_id_len &&
		    memcmp(f->build_id, m->build_id, m->build_id_len) == 0)
			return f;
	}
	if (z->nfiles == z->cap) {
		size_t cap = z->cap ? 2 * z->cap : 16;
		struct elf_file *n = realloc(z->files, cap * sizeof(*n));
		if (!n)
			return NULL;
		z->files = n;
		z->cap = cap;
	}
	struct elf_file *f = &z->files[z->nfiles];
	memset(f, 0, sizeof(*f));
	if (!(f->path = strdup(m->path)))
		return NULL;
	memcpy(f->build_id, m->build_id, m->build_id_len);
	f->build_id_len = m->build_id_len;
	/* "[vdso]", "[anon...]": no file to open. */
	if (m->path[0] == '/')
		load_file(f, m);
	z->nfiles++;
	return f;
}

static const struct sym *sym_at(const struct elf_file *f, uint64_t file_off)
{
	for (size_t i = 0; i < f->nsegs; i++) {
		const struct seg *g = &f->segs[i];
		if (file_off < g->off || file_off - g->off >= g->size)
			continue;
		uint64_t va = file_off - g->off + g->vaddr;
		size_t lo = 0, hi = f->nsyms;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (f->syms[mid].lo <= va)
				lo = mid + 1;
			else
				hi = mid;
		}
		/* Nested or overlapping symbols: the nearest start that
		 * still covers va. */
		for (size_t j = lo; j > 0; j--) {
			const struct sym *s = &f->syms[j - 1];
			if (va < s->hi)
				return s;
			if (lo - j > 8)
				break;
		}
		return NULL;
	}
	return NULL;
}

/* A return address points after the call: look up the byte before it so
 * a call that ends a function is not charged to the next one. */
static uint64_t lookup_addr(const struct tj_stack *k, unsigned i)
{
	return i > 0 && k->ips[i] ? k->ips[i] - 1 : k->ips[i];
}

static const struct sym *resolve(struct tj_symbolizer *z, const struct tj_stacks *s,
				 uint32_t pid, const struct tj_stack *k, unsigned i,
				 const struct tj_map **mp, uint64_t *file_off)
{
	const struct tj_map *m = tj_stacks_map_of(s, pid, k->ips[i]);
	struct elf_file *f;

	*mp = m;
	*file_off = 0;
	if (!m)
		return NULL;
	*file_off = k->ips[i] - m->start + m->offset;
	f = file_of(z, m);
	if (!f || !f->ok)
		return NULL;
	return sym_at(f, lookup_addr(k, i) - m->start + m->offset);
}

const char *tj_symbolize_frame(struct tj_symbolizer *z, const struct tj_stacks *s,
			       uint32_t pid, const struct tj_stack *k, unsigned i,
			       char *buf, size_t n)
{
	const struct tj_map *m;
	uint64_t off;

	if (i >= k->nuser) {
		const char *name = k->ksyms ? k->ksyms[i - k->nuser] : "";
		if (*name)
			snprintf(buf, n, "%s [kernel]", name);
		else
			snprintf(buf, n, "0x%" PRIx64 " [kernel]", k->ips[i]);
		return buf;
	}
	const struct sym *sy = resolve(z, s, pid, k, i, &m, &off);
	if (sy) {
		/* The offset into the function, of the address itself. */
		uint64_t va = lookup_addr(k, i) - m->start + m->offset;
		const struct elf_file *f = file_of(z, m);
		for (size_t j = 0; f && j < f->nsegs; j++)
			if (va >= f->segs[j].off && va - f->segs[j].off < f->segs[j].size) {
				va = va - f->segs[j].off + f->segs[j].vaddr;
				break;
			}
		snprintf(buf, n, "%s+0x%" PRIx64 " (%s)", sy->name,
			 va - sy->lo + (i > 0 ? 1 : 0), m->path);
	} else if (m) {
		snprintf(buf, n, "%s+0x%" PRIx64, m->path, off);
	} else {
		snprintf(buf, n, "0x%" PRIx64, k->ips[i]);
	}
	return buf;
}

void tj_print_stack(FILE *out, struct tj_symbolizer *z, const struct tj_stacks *s,
		    uint32_t pid, uint32_t id, const char *indent)
{
	const struct tj_stack *k = tj_stacks_find(s, id);
	char buf[512];

	if (!k) {
		fprintf(out, "%s(stack %u not in the log)\n", indent, id);
		return;
	}
	for (unsigned i = 0; i < (unsigned)k->nuser + k->nkernel; i++)
		fprintf(out, "%s#%u %s\n", indent, i,
			tj_symbolize_frame(z, s, pid, k, i, buf, sizeof(buf)));
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

uint64_t tj_callsite_id(struct tj_symbolizer *z, const struct tj_stacks *s,
			uint32_t pid, const struct tj_stack *k)
{
	uint64_t h = 14695981039346656037ull;

	for (unsigned i = 0; i < k->nuser && i < TJ_CALLSITE_FRAMES; i++) {
		const struct tj_map *m;
		uint64_t off;
		const struct sym *sy = resolve(z, s, pid, k, i, &m, &off);
		if (sy) {
			h = fnv1a(h, sy->name, strlen(sy->name) + 1);
		} else if (m) {
			const char *base = strrchr(m->path, '/');
			base = base ? base + 1 : m->path;
			h = fnv1a(h, base, strlen(base) + 1);
			h = fnv1a(h, &off, sizeof(off));
		} else {
			h = fnv1a(h, &k->ips[i], sizeof(k->ips[i]));
		}
	}
	return h ? h : 1;
}
