# The answers of Kbuild's compiler probes, remembered between builds of one module (kernels/module.sh).
#
# Every `make M=DIR modules` re-runs the probes of the kernel's Makefiles (cc-option, as-instr, ld-option, ...:
# scripts/Makefile.compiler's try-run), each a compiler run on /dev/null: 31 of them, 0.55 s of a 0.74 s rebuild
# of a one-file module measured here, with the same answers every time. Kbuild kept such a cache itself in
# 4.15-4.17 (the .cache.mk of scripts/Kbuild.include) and dropped it in 4.18, when Kconfig took over the compiler
# tests that decide the .config; the probes left in the Makefiles have run uncached since.
#
# module.sh names this file in MAKEFILES, so make reads it before the kernel's Makefile, and in every sub-make.
# `override` keeps Makefile.compiler's own `try-run =` from replacing this one. The cache is KLAB_PROBE_DB, one
# line per probe: "ok COMMAND" or "no COMMAND", COMMAND being the probe's text after make expanded it (the
# compiler, every flag, "$TMP" unexpanded). Only the exit status of a probe is used by try-run, so that is all
# that is kept. Everything that can change an answer without changing the text, the compiler, assembler and
# linker binaries, is module.sh's stamp on the first line: a different toolchain empties the cache.
#
# A hit costs the shell make starts anyway and one grep; a miss runs the probe as try-run does and records it.
ifneq ($(KLAB_PROBE_DB),)
define klab-newline


endef
# A probe whose text spans lines cannot be one line of the cache: it runs as Makefile.compiler runs it.
override try-run = $(if $(findstring $(klab-newline),$(1)),$(klab-try-run-plain),$(klab-try-run-cached))

klab-try-run-plain = $(shell set -e;						\
	TMP=$(TMPOUT)/tmp;							\
	trap "rm -rf $(TMPOUT)" EXIT;						\
	mkdir -p $(TMPOUT);							\
	if ($(1)) >/dev/null 2>&1;						\
	then echo "$(2)";							\
	else echo "$(3)";							\
	fi)

# The case patterns open with "(" so that make sees balanced parentheses in $(shell ...); printf, not echo,
# writes the key, as dash's echo would turn an as-instr's "\n" into a line break.
klab-try-run-cached = $(shell set -e;						\
	k='$(subst ','\'',$(1))';						\
	case "$$(grep -Fx -m1 -e "ok $$k" -e "no $$k" "$$KLAB_PROBE_DB" || :)" in	\
	(ok*) echo "$(2)";;							\
	(no*) echo "$(3)";;							\
	(*) TMP=$(TMPOUT)/tmp;							\
	   trap "rm -rf $(TMPOUT)" EXIT;					\
	   mkdir -p $(TMPOUT);							\
	   if ($(1)) >/dev/null 2>&1;						\
	   then printf '%s\n' "ok $$k" >>"$$KLAB_PROBE_DB"; echo "$(2)";	\
	   else printf '%s\n' "no $$k" >>"$$KLAB_PROBE_DB"; echo "$(3)";	\
	   fi;;									\
	esac)
endif
