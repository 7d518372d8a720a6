/* A live process's executable mappings, from /proc/PID/maps, with the
 * build ids of their files: what symbolisation needs once the process
 * (and perhaps its binary) is gone. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stacks.h"
#include "symbolize.h"

int tj_stacks_read_proc_maps(struct tj_stacks *s, uint32_t pid)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	int added = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	if (!(f = fopen(path, "re")))
		return -1;
	while (getline(&line, &cap, f) > 0) {
		struct tj_map m = { .pid = pid };
		char perms[8];
		int name_at = 0;
		/* start-end perms offset dev inode   path */
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %*s %n",
			   &m.start, &m.end, perms, &m.offset, &name_at) < 4 ||
		    name_at == 0 || perms[2] != 'x')
			continue;
		char *name = line + name_at;
		name[strcspn(name, "\n")] = '\0';
		if (!*name)
			continue; /* anonymous code (a JIT): nothing to symbolise with */
		m.path = name;
		/* A deleted file keeps its old path with " (deleted)": its
		 * build id cannot be read, the path still tells what it was. */
		const struct tj_map *known = tj_stacks_map_of_path(s, name);
		if (known) {
			/* Re-reads on a timer: the file was read already. */
			m.build_id_len = known->build_id_len;
			memcpy(m.build_id, known->build_id, sizeof(m.build_id));
		} else if (name[0] == '/' && !strstr(name, " (deleted)"))
			m.build_id_len = (uint8_t)tj_elf_build_id(name, m.build_id,
								  sizeof(m.build_id));
		if (tj_stacks_add_map(s, &m) < 0)
			break;
		added++;
	}
	free(line);
	fclose(f);
	return added;
}
