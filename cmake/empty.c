/* Placeholder source for a library layer that has no files yet. */
typedef int el_empty_translation_unit;
