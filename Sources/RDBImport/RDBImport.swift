/// Live import into Redis/Valkey servers (see the files of this module).
public enum RDBImport {}
